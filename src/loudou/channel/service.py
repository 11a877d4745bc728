"""Lead channels and their monthly spend (the numerator of CAC)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.audit import service as audit
from loudou.auth import policy
from loudou.auth.models import User
from loudou.channel.models import Channel, ChannelSpend
from loudou.channel.schemas import ChannelCreate, ChannelUpdate, SpendSet
from loudou.errors import NotFound, ValidationFailed


def _unique_name(session: Session, name: str, exclude_id: int | None = None) -> None:
    stmt = sa.select(Channel.id).where(Channel.name == name)
    found = session.scalar(stmt)
    if found is not None and found != exclude_id:
        raise ValidationFailed(f"a channel named {name} already exists", field="name")


def create_channel(session: Session, viewer: User, data: ChannelCreate) -> Channel:
    policy.ensure_admin(viewer)
    _unique_name(session, data.name)
    channel = Channel(**data.model_dump())
    session.add(channel)
    session.flush()
    audit.record(session, user_id=viewer.id, entity="channel", entity_id=channel.id, action="create",
                 changes=audit.snapshot(channel, ["name", "name_en", "kind"]))
    return channel


def update_channel(session: Session, viewer: User, channel_id: int, data: ChannelUpdate) -> Channel:
    policy.ensure_admin(viewer)
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise NotFound(f"channel {channel_id} not found")
    values = data.model_dump(exclude_unset=True)
    if values.get("name"):
        _unique_name(session, values["name"], channel.id)
    changes = audit.apply_changes(channel, values)
    audit.record(session, user_id=viewer.id, entity="channel", entity_id=channel.id, action="update",
                 changes=changes)
    session.flush()
    return channel


def set_spend(session: Session, viewer: User, channel_id: int, data: SpendSet) -> ChannelSpend:
    policy.ensure_admin(viewer)
    if session.get(Channel, channel_id) is None:
        raise NotFound(f"channel {channel_id} not found")
    row = session.scalars(
        sa.select(ChannelSpend).where(ChannelSpend.channel_id == channel_id, ChannelSpend.month == data.month)
    ).first()
    if row is None:
        row = ChannelSpend(channel_id=channel_id, month=data.month, amount=data.amount, currency=data.currency)
        session.add(row)
        before = None
    else:
        before = row.amount
        row.amount, row.currency = data.amount, data.currency
    session.flush()
    audit.record(session, user_id=viewer.id, entity="channel_spend", entity_id=row.id, action="set",
                 changes={"amount": (before, data.amount)})
    return row


def list_spend(session: Session, channel_id: int) -> list[ChannelSpend]:
    stmt = sa.select(ChannelSpend).where(ChannelSpend.channel_id == channel_id).order_by(ChannelSpend.month)
    return list(session.scalars(stmt))
