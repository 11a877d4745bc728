from __future__ import annotations

from fastapi import APIRouter

from loudou import records
from loudou.channel import service as channel_service
from loudou.channel.models import Channel
from loudou.channel.schemas import ChannelCreate, ChannelRead, ChannelUpdate, SpendRead, SpendSet
from loudou.web.deps import CurrentUser, DbSession
from loudou.web.jsonio import OrjsonResponse, many, one

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])
FIELDS = tuple(ChannelRead.model_fields)
SPEND_FIELDS = tuple(SpendRead.model_fields)


@router.get("", response_model=list[ChannelRead], name="channel_list")
def list_channels(session: DbSession, viewer: CurrentUser) -> OrjsonResponse:
    return many(session.query(Channel).order_by(Channel.id).all(), FIELDS)


@router.post("", response_model=ChannelRead, status_code=201, name="channel_create")
def create_channel(session: DbSession, viewer: CurrentUser, data: ChannelCreate) -> OrjsonResponse:
    return one(channel_service.create_channel(session, viewer, data), FIELDS, 201)


@router.get("/{channel_id}", response_model=ChannelRead, name="channel_get")
def get_channel(session: DbSession, viewer: CurrentUser, channel_id: int) -> OrjsonResponse:
    return one(records.get_reference(session, Channel, channel_id, "channel"), FIELDS)


@router.patch("/{channel_id}", response_model=ChannelRead, name="channel_update")
def update_channel(session: DbSession, viewer: CurrentUser, channel_id: int, data: ChannelUpdate) -> OrjsonResponse:
    return one(channel_service.update_channel(session, viewer, channel_id, data), FIELDS)


@router.get("/{channel_id}/spend", response_model=list[SpendRead], name="channel_spend_list")
def list_spend(session: DbSession, viewer: CurrentUser, channel_id: int) -> OrjsonResponse:
    records.get_reference(session, Channel, channel_id, "channel")
    return many(channel_service.list_spend(session, channel_id), SPEND_FIELDS)


@router.put("/{channel_id}/spend", response_model=SpendRead, name="channel_spend_set")
def set_spend(session: DbSession, viewer: CurrentUser, channel_id: int, data: SpendSet) -> OrjsonResponse:
    """Set one month's spend (admin); the month is stored as its first day."""
    return one(channel_service.set_spend(session, viewer, channel_id, data), SPEND_FIELDS)
