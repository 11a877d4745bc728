from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.audit.models import AuditLog


def list_entity_log(session: Session, entity: str, entity_id: int, limit: int = 200) -> list[AuditLog]:
    stmt = (
        sa.select(AuditLog)
        .where(AuditLog.entity == entity, AuditLog.entity_id == entity_id)
        .order_by(AuditLog.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))
