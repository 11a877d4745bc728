from __future__ import annotations

from loudou.contact import service as contact_service
from loudou.contact.models import Contact
from loudou.contact.schemas import ContactCreate, ContactFilters, ContactRead, ContactUpdate
from loudou.listing import ListSpec
from loudou.web.crud import owned_router

router = owned_router(
    prefix="/api/v1/contacts", entity="contact", model=Contact, read_schema=ContactRead,
    filters_schema=ContactFilters, create_schema=ContactCreate, update_schema=ContactUpdate,
    create=contact_service.create_contact, update=contact_service.update_contact,
    delete=contact_service.delete_contact,
    spec=ListSpec(model=Contact, sortable=("id", "name", "created_at", "updated_at"),
                  text_columns=("name", "phone", "email")),
)
