from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from loudou.db import Base


class Channel(Base):
    """Where a lead came from (web form, referral, trade show …)."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    name_en: Mapped[str | None] = mapped_column(sa.String(80))
    kind: Mapped[str] = mapped_column(sa.String(20), default="manual")
    is_active: Mapped[bool] = mapped_column(default=True)


class ChannelSpend(Base):
    """Money spent on a channel in one month: the numerator of CAC."""

    __tablename__ = "channel_spend"
    __table_args__ = (sa.UniqueConstraint("channel_id", "month", name="uq_channel_spend_channel_month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(sa.ForeignKey("channels.id"))
    month: Mapped[dt.date] = mapped_column(sa.Date)  # first day of the month
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2))
    currency: Mapped[str] = mapped_column(sa.String(3), default="CNY")
