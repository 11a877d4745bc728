from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from loudou.db import Base, UTCDateTime, utcnow


class Pipeline(Base):
    __tablename__ = "pipelines"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    name_en: Mapped[str | None] = mapped_column(sa.String(120))
    is_default: Mapped[bool] = mapped_column(default=False)
    # A relaxed pipeline lets deals enter stages without their required fields/checklist.
    is_relaxed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


class Stage(Base):
    """An open stage of a pipeline; Won / Lost are deal statuses, not stages."""

    __tablename__ = "stages"
    __table_args__ = (sa.UniqueConstraint("pipeline_id", "bit", name="uq_stages_pipeline_bit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(sa.ForeignKey("pipelines.id"), index=True)
    position: Mapped[int]
    # Stable bit index of this stage in Deal.reached_mask; never reused within a pipeline.
    bit: Mapped[int]
    name: Mapped[str] = mapped_column(sa.String(120))
    name_en: Mapped[str | None] = mapped_column(sa.String(120))
    probability: Mapped[int] = mapped_column(default=10)  # default win probability, percent
    expected_days: Mapped[int] = mapped_column(default=14)  # after this a deal is "rotting"
    follow_up_days: Mapped[int] = mapped_column(default=7)
    main_task: Mapped[str] = mapped_column(sa.Text, default="")
    key_points: Mapped[str] = mapped_column(sa.Text, default="")
    playbook: Mapped[str] = mapped_column(sa.Text, default="")
    checklist: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    required_fields: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    is_active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__: dict[str, Any] = {"version_id_col": version}


class LostReason(Base):
    __tablename__ = "lost_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    name_en: Mapped[str | None] = mapped_column(sa.String(120))
    # "lost" reasons close a deal as lost; "disqualify" reasons remove an invalid lead.
    kind: Mapped[str] = mapped_column(sa.String(12), default="lost")
    is_active: Mapped[bool] = mapped_column(default=True)
