"""JSON routes for records with an owner and a team (companies, contacts, activities,
tasks): list (filtered, sorted, keyset-paginated and narrowed by the policy), create,
get, patch with the version read, delete with the version read.

No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations,
which refer to this factory's arguments."""

from collections.abc import Callable
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from loudou.auth import policy
from loudou.auth.models import User
from loudou.listing import ListSpec, finish_page
from loudou.web.deps import CurrentUser, DbSession
from loudou.web.jsonio import OrjsonResponse, one, page
from loudou.web.schemas import Page


def owned_router(
    *,
    prefix: str,
    entity: str,
    model: Any,
    read_schema: type[BaseModel],
    filters_schema: type[BaseModel],
    create_schema: type[BaseModel],
    update_schema: type[BaseModel],
    create: Callable[[Session, User, Any], Any],
    update: Callable[[Session, User, int, Any], Any],
    delete: Callable[[Session, User, int, int], None],
    spec: ListSpec,
) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=[entity + "s"])
    fields = tuple(read_schema.model_fields)

    @router.get("", response_model=Page[read_schema], name=f"{entity}_list")  # type: ignore[valid-type]
    def list_items(session: DbSession, viewer: CurrentUser,
                   filters: Annotated[filters_schema, Query()]) -> OrjsonResponse:  # type: ignore[valid-type]
        role = policy.scope_role(viewer)
        if role is None:
            return page([], fields, None)
        stmt, params, sort = spec.statement(
            ("orm", role), lambda _sort: sa.select(model).where(policy.scope_clause(model, role)), filters)
        rows = list(session.scalars(stmt, params | policy.scope_params(viewer)))
        items, next_cursor = finish_page(rows, sort, filters.limit)  # type: ignore[attr-defined]
        return page(items, fields, next_cursor)

    @router.post("", response_model=read_schema, status_code=201, name=f"{entity}_create")
    def create_item(session: DbSession, viewer: CurrentUser,
                    data: create_schema) -> OrjsonResponse:  # type: ignore[valid-type]
        return one(create(session, viewer, data), fields, 201)

    @router.get("/{item_id}", response_model=read_schema, name=f"{entity}_get")
    def get_item(session: DbSession, viewer: CurrentUser, item_id: int) -> OrjsonResponse:
        obj = session.get(model, item_id)
        policy.ensure_visible(viewer, obj, entity, item_id)
        return one(obj, fields)

    @router.patch("/{item_id}", response_model=read_schema, name=f"{entity}_update")
    def update_item(session: DbSession, viewer: CurrentUser, item_id: int,
                    data: update_schema) -> OrjsonResponse:  # type: ignore[valid-type]
        return one(update(session, viewer, item_id, data), fields)

    @router.delete("/{item_id}", status_code=204, name=f"{entity}_delete")
    def delete_item(session: DbSession, viewer: CurrentUser, item_id: int,
                    version: Annotated[int, Query(description="the version you read")]) -> None:
        delete(session, viewer, item_id, version)

    return router

