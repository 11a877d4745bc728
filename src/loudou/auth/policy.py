"""The one place that decides what a user may see or change.

Rules (PRODUCT.md E1, RELIABILITY.md decisions 1-2):
- a rep sees and changes the records they own;
- a manager sees and changes the records of their team (their own records carry their
  team too; a manager without a team is treated like a rep). One indexed equality, not an
  OR of two columns: SQLite merged two indexes and sorted the whole team for every page;
- an admin sees and changes everything;
- reference data (pipelines, stages, channels, lost reasons, teams, users) is readable by
  every active user and changeable by admins only;
- a record outside the viewer's scope does not exist for them: ``NotFound``, never 403;
- what hangs off a deal (its stage history, activities, tasks and field history) is read
  with the deal: whoever may see the deal sees its timeline, including entries logged by
  colleagues; changing one of those records still needs :func:`ensure_can_change` on it.

Every query that returns user data is narrowed with :func:`scope`; every write checks
:func:`ensure_can_change` (services do this, so API, CLI and pages share it).
"""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa

from loudou.auth.models import Role, User
from loudou.errors import NotFound, PermissionDenied, ValidationFailed

S = TypeVar("S", bound=sa.Select[Any])

#: Models whose rows belong to an owner and a team (the narrowed ones).
OWNED_ENTITIES = ("Deal", "Company", "Contact", "Activity", "Task")


def _is_owned(model: Any) -> bool:
    return getattr(model, "__name__", "") in OWNED_ENTITIES


def condition(viewer: User, model: Any) -> sa.ColumnElement[bool]:
    """The rule as a WHERE condition on ``model`` for ``viewer``."""
    if not _is_owned(model):
        return sa.true() if viewer.is_active else sa.false()
    return owned_condition(viewer, model.team_id, model.owner_id)


def owned_condition(viewer: User, team_column: Any, owner_column: Any) -> sa.ColumnElement[bool]:
    """The same rule on explicit team and owner columns: for tables that summarise owned
    records (the analytics counters), so a summary shows no more than its rows would."""
    if not viewer.is_active:
        return sa.false()
    if viewer.role == Role.admin:
        return sa.true()
    if viewer.role == Role.manager and viewer.team_id is not None:
        return team_column == viewer.team_id
    return owner_column == viewer.id


def scope(stmt: S, viewer: User, model: Any) -> S:
    """Narrow a SELECT over ``model`` to the rows ``viewer`` may see."""
    return stmt.where(condition(viewer, model))


def scope_clause(model: Any, role: Role) -> sa.ColumnElement[bool]:
    """The same rule as :func:`scope` as a reusable clause with bind parameters
    ``viewer_id`` and ``viewer_team_id`` (see :func:`scope_params`), for statements built
    once and executed on hot paths."""
    if not _is_owned(model) or role == Role.admin:
        return sa.true()
    if role == Role.manager:
        return model.team_id == sa.bindparam("viewer_team_id", type_=sa.Integer)
    return model.owner_id == sa.bindparam("viewer_id", type_=sa.Integer)


def scope_params(viewer: User) -> dict[str, Any]:
    return {"viewer_id": viewer.id, "viewer_team_id": viewer.team_id if viewer.team_id is not None else -1}


def scope_role(viewer: User) -> Role | None:
    """The role whose clause applies, or None when the viewer sees nothing (disabled)."""
    if not viewer.is_active:
        return None
    if viewer.role == Role.manager and viewer.team_id is None:
        return Role.rep
    return viewer.role


def can_see(viewer: User, obj: Any) -> bool:
    if not viewer.is_active:
        return False
    if not _is_owned(type(obj)) or viewer.role == Role.admin:
        return True
    if viewer.role == Role.manager and viewer.team_id is not None:
        return bool(obj.team_id == viewer.team_id)
    return bool(obj.owner_id == viewer.id)


def can_change(viewer: User, obj: Any) -> bool:
    if not viewer.is_active:
        return False
    if not _is_owned(type(obj)):
        return viewer.role == Role.admin
    return can_see(viewer, obj)


def ensure_visible(viewer: User, obj: Any, what: str, ident: object) -> None:
    """Raise NotFound for a missing row and for one the viewer may not see alike."""
    if obj is None or not can_see(viewer, obj):
        raise NotFound(f"{what} {ident} not found")


def ensure_can_change(viewer: User, obj: Any, what: str, ident: object) -> None:
    ensure_visible(viewer, obj, what, ident)
    if not can_change(viewer, obj):
        raise PermissionDenied(f"you may not change {what} {ident}")


def ensure_admin(viewer: User) -> None:
    if not viewer.is_active or viewer.role != Role.admin:
        raise PermissionDenied("only an admin may do this")


def assignable_owner(viewer: User, owner: User | None) -> None:
    """Who may be made owner of a record: reps only themselves, managers their team."""
    if owner is None or viewer.role == Role.admin:
        return
    if owner.id == viewer.id:
        return
    if viewer.role == Role.manager and owner.team_id is not None and owner.team_id == viewer.team_id:
        return
    raise ValidationFailed("you may not assign records to this user", field="owner_id")
