from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from loudou.db import Base, UTCDateTime, utcnow


class ActivityKind(enum.StrEnum):
    call = "call"
    email = "email"
    meeting = "meeting"
    visit = "visit"
    note = "note"


class Activity(Base):
    __tablename__ = "activities"
    __table_args__ = (
        sa.Index("ix_activities_deal_occurred", "deal_id", "occurred_at"),
        sa.Index("ix_activities_owner_occurred", "owner_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ActivityKind] = mapped_column(sa.Enum(ActivityKind, native_enum=False, length=16))
    subject: Mapped[str] = mapped_column(sa.String(200), default="")
    body: Mapped[str | None] = mapped_column(sa.Text)
    deal_id: Mapped[int | None] = mapped_column(sa.ForeignKey("deals.id", ondelete="CASCADE"))
    company_id: Mapped[int | None] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"), index=True)
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("teams.id"), index=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_min: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__: dict[str, Any] = {"version_id_col": version}


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        sa.Index("ix_tasks_owner_open_due", "owner_id", "done_at", "due_at"),
        # "Deals with no next step" asks, per deal, whether an open task exists.
        sa.Index("ix_tasks_open_deal", "deal_id", sqlite_where=sa.text("done_at IS NULL"),
                 postgresql_where=sa.text("done_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    notes: Mapped[str | None] = mapped_column(sa.Text)
    deal_id: Mapped[int | None] = mapped_column(sa.ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    company_id: Mapped[int | None] = mapped_column(sa.ForeignKey("companies.id"))
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("teams.id"), index=True)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    priority: Mapped[int] = mapped_column(default=2)  # 1 high, 2 normal, 3 low
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__: dict[str, Any] = {"version_id_col": version}
