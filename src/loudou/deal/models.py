from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from loudou.db import Base, UTCDateTime, utcnow


class DealStatus(enum.StrEnum):
    open = "open"
    won = "won"
    lost = "lost"
    disqualified = "disqualified"


class TransitionKind(enum.StrEnum):
    create = "create"
    move = "move"
    win = "win"
    lose = "lose"
    disqualify = "disqualify"
    reopen = "reopen"


OPEN_ONLY = sa.text("status = 'open'")
CLOSED_ONLY = sa.text("closed_at IS NOT NULL")


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (
        # Keyset pages of the list endpoint, per scope (rep: owner, manager: team).
        sa.Index("ix_deals_owner_status_id", "owner_id", "status", "id"),
        sa.Index("ix_deals_team_status_id", "team_id", "status", "id"),
        sa.Index("ix_deals_stage_status_id", "stage_id", "status", "id"),
        sa.Index("ix_deals_created_mask", "created_at", "reached_mask"),
        sa.Index("ix_deals_status_closed", "status", "closed_at"),
        # Keyset pages of the list sorted by a column: (column, id) walks the index in order.
        sa.Index("ix_deals_amount_id", "amount", "id"),
        sa.Index("ix_deals_expected_close_id", "expected_close_date", "id"),
        sa.Index("ix_deals_stage_entered_id", "stage_entered_at", "id"),
        sa.Index("ix_deals_last_activity_id", "last_activity_at", "id"),
        sa.Index("ix_deals_created_id", "created_at", "id"),
        # The default page of a rep's / a team's deals, newest first, whatever the status.
        sa.Index("ix_deals_owner_id_id", "owner_id", "id"),
        sa.Index("ix_deals_team_id_id", "team_id", "id"),
        # "Rotting": open deals of a stage that entered it before a stage-specific cut-off.
        sa.Index("ix_deals_stage_status_entered", "stage_id", "status", "stage_entered_at"),
        # The board: open deals only (~10% of rows), covering the column totals and cards.
        sa.Index("ix_deals_open_board", "stage_id", "status", "stage_entered_at", "amount", "owner_id", "team_id",
                 "channel_id", "title", sqlite_where=OPEN_ONLY, postgresql_where=OPEN_ONLY),
        sa.Index("ix_deals_open_owner", "owner_id", "status", "stage_id", "stage_entered_at", "amount", "title",
                 sqlite_where=OPEN_ONLY, postgresql_where=OPEN_ONLY),
        # Reports: the cohort of a period with any filter (index-only), deals closed in a period.
        sa.Index("ix_deals_cohort", "pipeline_id", "created_at", "reached_mask", "status", "amount", "owner_id",
                 "team_id", "channel_id"),
        sa.Index("ix_deals_closed", "closed_at", "status", "pipeline_id", "owner_id", "team_id", "channel_id",
                 "created_at", "amount", "lost_reason_id", sqlite_where=CLOSED_ONLY, postgresql_where=CLOSED_ONLY),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    pipeline_id: Mapped[int] = mapped_column(sa.ForeignKey("pipelines.id"), index=True)
    stage_id: Mapped[int] = mapped_column(sa.ForeignKey("stages.id"))
    status: Mapped[DealStatus] = mapped_column(
        sa.Enum(DealStatus, native_enum=False, length=16), default=DealStatus.open
    )
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(sa.ForeignKey("teams.id"))
    company_id: Mapped[int | None] = mapped_column(sa.ForeignKey("companies.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"), index=True)
    channel_id: Mapped[int | None] = mapped_column(sa.ForeignKey("channels.id"), index=True)
    product_id: Mapped[int | None] = mapped_column(sa.ForeignKey("products.id"))
    amount: Mapped[Decimal | None] = mapped_column(sa.Numeric(14, 2))
    currency: Mapped[str] = mapped_column(sa.String(3), default="CNY")
    expected_close_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    lost_reason_id: Mapped[int | None] = mapped_column(sa.ForeignKey("lost_reasons.id"))
    close_note: Mapped[str | None] = mapped_column(sa.Text)
    # Checklist items confirmed, per stage id (as string keys, JSON objects need them).
    checklist_done: Mapped[dict[str, list[str]]] = mapped_column(sa.JSON, default=dict)
    description: Mapped[str | None] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Derived state, kept current by deal.service in the same transaction as the change
    # so analytics read one row instead of replaying the history.
    stage_entered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reached_mask: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    last_activity_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    activity_count: Mapped[int] = mapped_column(default=0)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__: dict[str, Any] = {"version_id_col": version}


class StageTransition(Base):
    """Append-only history of a deal's stage and status: the source of funnel analytics."""

    __tablename__ = "stage_transitions"
    __table_args__ = (
        sa.Index("ix_stage_transitions_deal_id", "deal_id", "id"),
        sa.Index("ix_stage_transitions_to_stage_at", "to_stage_id", "at"),
        # Time in stage: completed stays by the time they started.
        sa.Index("ix_transitions_stays", "at", "to_stage_id", "duration_s", "deal_id",
                 sqlite_where=sa.text("duration_s IS NOT NULL"), postgresql_where=sa.text("duration_s IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(sa.ForeignKey("deals.id", ondelete="CASCADE"))
    pipeline_id: Mapped[int] = mapped_column(sa.ForeignKey("pipelines.id"))
    kind: Mapped[TransitionKind] = mapped_column(sa.Enum(TransitionKind, native_enum=False, length=16))
    from_stage_id: Mapped[int | None] = mapped_column(sa.ForeignKey("stages.id"))
    to_stage_id: Mapped[int] = mapped_column(sa.ForeignKey("stages.id"))
    from_status: Mapped[DealStatus | None] = mapped_column(sa.Enum(DealStatus, native_enum=False, length=16))
    to_status: Mapped[DealStatus] = mapped_column(sa.Enum(DealStatus, native_enum=False, length=16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # Seconds the deal then spent in to_stage/to_status; filled when the next transition
    # is written, NULL while this is the deal's current state.
    duration_s: Mapped[int | None]
