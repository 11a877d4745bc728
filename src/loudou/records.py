"""Create, update and delete for records that have an owner and a team.

Companies, contacts, activities and tasks share these rules with deals: the policy
decides who may change a row, the version read must still be current, and every change
is audited. Domain services add their own validation and then call these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from loudou.audit import service as audit
from loudou.auth import policy
from loudou.auth.models import User
from loudou.errors import Conflict, NotFound, ValidationFailed
from loudou.pipeline.service import check_version

T = TypeVar("T")


def set_owner(session: Session, viewer: User, values: dict[str, Any], *, default_to_viewer: bool = True) -> None:
    """Fill owner_id/team_id: the viewer by default; another owner only if the policy allows."""
    if values.get("owner_id") is None:
        if not default_to_viewer:
            values.pop("owner_id", None)
            return
        values["owner_id"] = viewer.id
    owner = session.get(User, values["owner_id"])
    if owner is None or not owner.is_active:
        raise ValidationFailed(f"owner_id {values['owner_id']} is not an active user", field="owner_id")
    policy.assignable_owner(viewer, owner)
    values["team_id"] = owner.team_id


def check_visible_ref(session: Session, viewer: User, model: Any, ref: int | None, field: str) -> None:
    if ref is None:
        return
    obj = session.get(model, ref)
    if obj is None or not policy.can_see(viewer, obj):
        raise ValidationFailed(f"{field} {ref} does not exist", field=field)


def create_owned(session: Session, viewer: User, obj: T, entity: str, audited: Sequence[str],
                 source: str = "api") -> T:
    session.add(obj)
    session.flush()
    audit.record(session, user_id=viewer.id, entity=entity, entity_id=obj.id,  # type: ignore[attr-defined]
                 action="create", changes=audit.snapshot(obj, list(audited)), source=source)
    return obj


def load_for_change(session: Session, viewer: User, model: type[T], ident: int, entity: str) -> T:
    obj = session.get(model, ident)
    policy.ensure_can_change(viewer, obj, entity, ident)
    assert obj is not None
    return obj


def update_owned(session: Session, viewer: User, obj: Any, version: int, values: dict[str, Any], entity: str,
                 source: str = "api") -> dict[str, tuple[Any, Any]]:
    check_version(obj, version, entity)
    changes = audit.apply_changes(obj, values)
    if changes:
        audit.record(session, user_id=viewer.id, entity=entity, entity_id=obj.id, action="update",
                     changes=changes, source=source)
        flush_or_conflict(session, entity, obj.id)
    return changes


def delete_owned(session: Session, viewer: User, obj: Any, version: int, entity: str, audited: Sequence[str],
                 source: str = "api") -> None:
    check_version(obj, version, entity)
    audit.record(session, user_id=viewer.id, entity=entity, entity_id=obj.id, action="delete",
                 changes={f: (getattr(obj, f), None) for f in audited if getattr(obj, f) is not None},
                 source=source)
    session.delete(obj)
    flush_or_conflict(session, entity, obj.id)


def flush_or_conflict(session: Session, entity: str, ident: int) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise Conflict(f"{entity} {ident} was changed by someone else; reload and try again") from exc
    except IntegrityError as exc:
        raise Conflict(f"{entity} {ident} is still referenced by other records") from exc


def get_reference(session: Session, model: type[T], ident: int, entity: str) -> T:
    """Reference data (users, teams, channels, stages…) by id, readable by every user."""
    obj = session.get(model, ident)
    if obj is None:
        raise NotFound(f"{entity} {ident} not found")
    return obj
