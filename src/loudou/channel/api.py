from __future__ import annotations

from fastapi import APIRouter

from loudou.channel import service as channel_service
from loudou.channel.models import Channel
from loudou.channel.schemas import ChannelCreate, ChannelRead, ChannelUpdate, SpendRead, SpendSet
from loudou.errors import NotFound
from loudou.web.deps import CurrentUser, DbSession
from loudou.web.jsonio import OrjsonResponse, one

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])
FIELDS = tuple(ChannelRead.model_fields)
SPEND_FIELDS = tuple(SpendRead.model_fields)


@router.get("", response_model=list[ChannelRead], name="channel_list")
def list_channels(session: DbSession, viewer: CurrentUser) -> OrjsonResponse:
    rows = session.query(Channel).order_by(Channel.id).all()
    return OrjsonResponse([{f: getattr(c, f) for f in FIELDS} for c in rows])


@router.post("", response_model=ChannelRead, status_code=201, name="channel_create")
def create_channel(session: DbSession, viewer: CurrentUser, data: ChannelCreate) -> OrjsonResponse:
    return one(channel_service.create_channel(session, viewer, data), FIELDS, 201)


@router.get("/{channel_id}", response_model=ChannelRead, name="channel_get")
def get_channel(session: DbSession, viewer: CurrentUser, channel_id: int) -> OrjsonResponse:
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise NotFound(f"channel {channel_id} not found")
    return one(channel, FIELDS)


@router.patch("/{channel_id}", response_model=ChannelRead, name="channel_update")
def update_channel(session: DbSession, viewer: CurrentUser, channel_id: int, data: ChannelUpdate) -> OrjsonResponse:
    return one(channel_service.update_channel(session, viewer, channel_id, data), FIELDS)


@router.get("/{channel_id}/spend", response_model=list[SpendRead], name="channel_spend_list")
def list_spend(session: DbSession, viewer: CurrentUser, channel_id: int) -> OrjsonResponse:
    if session.get(Channel, channel_id) is None:
        raise NotFound(f"channel {channel_id} not found")
    return OrjsonResponse([{f: getattr(s, f) for f in SPEND_FIELDS}
                           for s in channel_service.list_spend(session, channel_id)])


@router.put("/{channel_id}/spend", response_model=SpendRead, name="channel_spend_set")
def set_spend(session: DbSession, viewer: CurrentUser, channel_id: int, data: SpendSet) -> OrjsonResponse:
    """Set one month's spend (admin); the month is stored as its first day."""
    return one(channel_service.set_spend(session, viewer, channel_id, data), SPEND_FIELDS)
