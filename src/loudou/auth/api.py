"""Users and teams. Everyone may list them (to pick an owner); admins change them."""

from __future__ import annotations

from fastapi import APIRouter

from loudou import records
from loudou.auth import service as auth_service
from loudou.auth.models import Team, User
from loudou.auth.schemas import TeamCreate, TeamRead, TeamUpdate, UserCreate, UserRead, UserUpdate
from loudou.web.deps import CurrentUser, DbSession, token_cache
from loudou.web.jsonio import OrjsonResponse, many, one

router = APIRouter(prefix="/api/v1", tags=["users and teams"])
USER_FIELDS = tuple(UserRead.model_fields)
TEAM_FIELDS = tuple(TeamRead.model_fields)


@router.get("/users", response_model=list[UserRead], name="user_list")
def list_users(session: DbSession, viewer: CurrentUser) -> OrjsonResponse:
    return many(auth_service.list_users(session), USER_FIELDS)


@router.get("/users/me", response_model=UserRead, name="user_me")
def me(session: DbSession, viewer: CurrentUser) -> OrjsonResponse:
    user = session.get(User, viewer.id)
    return one(user, USER_FIELDS)


@router.post("/users", response_model=UserRead, status_code=201, name="user_create")
def create_user(session: DbSession, viewer: CurrentUser, data: UserCreate) -> OrjsonResponse:
    return one(auth_service.create_user(session, viewer, data), USER_FIELDS, 201)


@router.get("/users/{user_id}", response_model=UserRead, name="user_get")
def get_user(session: DbSession, viewer: CurrentUser, user_id: int) -> OrjsonResponse:
    return one(records.get_reference(session, User, user_id, "user"), USER_FIELDS)


@router.patch("/users/{user_id}", response_model=UserRead, name="user_update")
def update_user(session: DbSession, viewer: CurrentUser, user_id: int, data: UserUpdate) -> OrjsonResponse:
    user = auth_service.update_user(session, viewer, user_id, data)
    token_cache.clear()  # a role, team or active change must take effect at once
    return one(user, USER_FIELDS)


@router.get("/teams", response_model=list[TeamRead], name="team_list")
def list_teams(session: DbSession, viewer: CurrentUser) -> OrjsonResponse:
    return many(session.query(Team).order_by(Team.id).all(), TEAM_FIELDS)


@router.post("/teams", response_model=TeamRead, status_code=201, name="team_create")
def create_team(session: DbSession, viewer: CurrentUser, data: TeamCreate) -> OrjsonResponse:
    return one(auth_service.create_team(session, viewer, data), TEAM_FIELDS, 201)


@router.get("/teams/{team_id}", response_model=TeamRead, name="team_get")
def get_team(session: DbSession, viewer: CurrentUser, team_id: int) -> OrjsonResponse:
    return one(records.get_reference(session, Team, team_id, "team"), TEAM_FIELDS)


@router.patch("/teams/{team_id}", response_model=TeamRead, name="team_update")
def update_team(session: DbSession, viewer: CurrentUser, team_id: int, data: TeamUpdate) -> OrjsonResponse:
    return one(auth_service.update_team(session, viewer, team_id, data), TEAM_FIELDS)
