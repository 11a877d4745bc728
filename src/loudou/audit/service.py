"""Writes the append-only audit log: who changed which field of what, before and after."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy.orm import Session

from loudou.audit.models import AuditLog
from loudou.db import utcnow


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def record(
    session: Session,
    *,
    user_id: int | None,
    entity: str,
    entity_id: int,
    action: str,
    changes: Mapping[str, tuple[Any, Any]] | None = None,
    source: str = "api",
) -> None:
    """One row per changed field; one row with no field for actions without changes."""
    at = utcnow()
    if not changes:
        session.add(
            AuditLog(at=at, user_id=user_id, source=source, entity=entity, entity_id=entity_id, action=action)
        )
        return
    session.add_all(
        AuditLog(
            at=at,
            user_id=user_id,
            source=source,
            entity=entity,
            entity_id=entity_id,
            action=action,
            field=field,
            before=_text(before),
            after=_text(after),
        )
        for field, (before, after) in changes.items()
    )


def apply_changes(obj: Any, values: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set attributes on ``obj`` and return {field: (before, after)} for those that changed."""
    changed: dict[str, tuple[Any, Any]] = {}
    for field, new in values.items():
        old = getattr(obj, field)
        if old != new:
            setattr(obj, field, new)
            changed[field] = (old, new)
    return changed


def snapshot(obj: Any, fields: list[str]) -> dict[str, tuple[Any, Any]]:
    """Audit entries of a newly created row: every set field from nothing to its value."""
    return {f: (None, getattr(obj, f)) for f in fields if getattr(obj, f) is not None}
