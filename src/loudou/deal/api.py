"""JSON routes under /api/v1/deals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from loudou.deal import queries as deal_queries
from loudou.deal import service as deal_service
from loudou.deal.models import Deal
from loudou.deal.schemas import (
    DEAL_FIELDS,
    TRANSITION_FIELDS,
    DealClose,
    DealCreate,
    DealFilters,
    DealMove,
    DealRead,
    DealReopen,
    DealUpdate,
    TransitionRead,
)
from loudou.errors import NotFound
from loudou.web.deps import BEARER_SECURITY, CurrentUser, DbSession, authenticate, get_db
from loudou.web.jsonio import OrjsonResponse, one
from loudou.web.query import parse_query, query_parameters
from loudou.web.schemas import Page

router = APIRouter(prefix="/api/v1/deals", tags=["deals"])


@router.get("", response_model=Page[DealRead], name="deal_list",
            openapi_extra={**BEARER_SECURITY, "parameters": query_parameters(DealFilters)})
async def list_deals(request: Request) -> OrjsonResponse:
    """Deals the caller may see, filtered, sorted and keyset-paginated (follow next_cursor)."""
    viewer = authenticate(request)
    filters = parse_query(request, DealFilters)
    with get_db(request).read_connection() as conn:
        rows, next_cursor = deal_queries.fetch_deal_page(conn, viewer, filters)
    return OrjsonResponse({"items": rows, "next_cursor": next_cursor})


@router.post("", response_model=DealRead, status_code=201, name="deal_create")
def create_deal(session: DbSession, viewer: CurrentUser, data: DealCreate) -> OrjsonResponse:
    """Create a deal; it enters the pipeline's first stage unless stage_id says otherwise."""
    return one(deal_service.create_deal(session, viewer, data), DEAL_FIELDS, 201)


def _visible(session: DbSession, viewer: CurrentUser, deal_id: int) -> Deal:
    deal = deal_queries.get_visible_deal(session, viewer, deal_id)
    if deal is None:
        raise NotFound(f"deal {deal_id} not found")
    return deal


@router.get("/{deal_id}", response_model=DealRead, name="deal_get", openapi_extra=BEARER_SECURITY)
async def get_deal(request: Request, deal_id: int) -> OrjsonResponse:
    row = deal_queries.fetch_visible_deal(get_db(request), authenticate(request), deal_id)
    if row is None:
        raise NotFound(f"deal {deal_id} not found")
    return OrjsonResponse(row)


@router.patch("/{deal_id}", response_model=DealRead, name="deal_update")
def update_deal(session: DbSession, viewer: CurrentUser, deal_id: int, data: DealUpdate) -> OrjsonResponse:
    """Change fields; send the version you read. A stale version answers 409."""
    return one(deal_service.update_deal(session, viewer, deal_id, data), DEAL_FIELDS)


@router.delete("/{deal_id}", status_code=204, name="deal_delete")
def delete_deal(session: DbSession, viewer: CurrentUser, deal_id: int,
                version: Annotated[int, Query(description="the version you read")]) -> None:
    deal_service.delete_deal(session, viewer, deal_id, version)


@router.post("/{deal_id}/move", response_model=DealRead, name="deal_move")
def move_deal(session: DbSession, viewer: CurrentUser, deal_id: int, data: DealMove) -> OrjsonResponse:
    """Move to any open stage (forward, back, or skipping). Missing required fields or
    checklist items answer 422 naming them; they may be sent along in `fields`/`checklist`."""
    return one(deal_service.move_deal(session, viewer, deal_id, data), DEAL_FIELDS)


@router.post("/{deal_id}/win", response_model=DealRead, name="deal_win")
def win_deal(session: DbSession, viewer: CurrentUser, deal_id: int, data: DealClose) -> OrjsonResponse:
    return one(deal_service.win_deal(session, viewer, deal_id, data), DEAL_FIELDS)


@router.post("/{deal_id}/lose", response_model=DealRead, name="deal_lose")
def lose_deal(session: DbSession, viewer: CurrentUser, deal_id: int, data: DealClose) -> OrjsonResponse:
    """Close as lost; a reason is required (`lost_reason_id`, or `reason` by name)."""
    return one(deal_service.lose_deal(session, viewer, deal_id, data), DEAL_FIELDS)


@router.post("/{deal_id}/disqualify", response_model=DealRead, name="deal_disqualify")
def disqualify_deal(session: DbSession, viewer: CurrentUser, deal_id: int, data: DealClose) -> OrjsonResponse:
    return one(deal_service.disqualify_deal(session, viewer, deal_id, data), DEAL_FIELDS)


@router.post("/{deal_id}/reopen", response_model=DealRead, name="deal_reopen")
def reopen_deal(session: DbSession, viewer: CurrentUser, deal_id: int, data: DealReopen) -> OrjsonResponse:
    return one(deal_service.reopen_deal(session, viewer, deal_id, data), DEAL_FIELDS)


@router.get("/{deal_id}/transitions", response_model=list[TransitionRead], name="deal_transitions")
def deal_transitions(session: DbSession, viewer: CurrentUser, deal_id: int) -> OrjsonResponse:
    """The deal's stage history, oldest first."""
    _visible(session, viewer, deal_id)
    rows = deal_queries.list_transitions(session, deal_id)
    return OrjsonResponse([{f: getattr(t, f) for f in TRANSITION_FIELDS} for t in rows])
