"""Settings › users, teams and API tokens (PRODUCT.md E1, F3).

Secrets are shown once and kept nowhere: an invited user's first password and a new API
token appear only in the answer to the POST that made them (``Cache-Control: no-store``);
the database holds an argon2 hash and a SHA-256 respectively. Every change that can
alter what a bearer token may do (role, team, active, revocation) clears this process's
token cache once the transaction is committed."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from loudou.auth import service as auth_service
from loudou.auth.models import Role, Team, User
from loudou.auth.schemas import TeamCreate, TeamUpdate, UserCreate, UserUpdate
from loudou.errors import NotFound
from loudou.settings import queries as sq
from loudou.settings.forms import (
    Form,
    FormRefused,
    FormState,
    attempt,
    checked,
    redirect,
    refuse,
    show,
    text,
    validated,
    viewer,
)
from loudou.web.deps import DbSession, token_cache
from loudou.web.pages import AdminPage
from loudou.web.templating import Page

router = APIRouter(include_in_schema=False)

#: Bytes of randomness in an invited user's first password (16 URL-safe characters).
FIRST_PASSWORD_BYTES = 12
NO_STORE = {"Cache-Control": "no-store"}


def _labels(page: Page) -> dict[str, str]:
    return {"name": page.gettext("Name"), "email": page.gettext("E-mail"), "role": page.gettext("Role"),
            "team_id": page.gettext("Team"), "is_active": page.gettext("Active"),
            "token_name": page.gettext("Token name")}


def _after_commit_clear_tokens(response: Response) -> Response:
    # The request's transaction commits before the response is sent and background tasks
    # run after it, so a concurrent API call cannot re-cache the state from before.
    token_cache.clear()
    response.background = BackgroundTask(token_cache.clear)
    return response


def _team_id(form: Form) -> int | None:
    raw = text(form, "team_id")
    return int(raw) if raw.isdigit() else None


# --------------------------------------------------------------------------- users and teams


def _users_page(page: Page, session: Session, state: FormState | None = None, status_code: int = 200,
                invited: dict[str, Any] | None = None) -> Response:
    teams = sq.team_summaries(session)
    return show(page, "settings/users.html", {
        "users": sq.all_users(session), "teams": teams, "team_names": {t.team.id: t.team.name for t in teams},
        "roles": list(Role), "state": state or FormState(), "invited": invited,
    }, section="users", status_code=status_code, headers=NO_STORE if invited else None)


def _user_messages(page: Page) -> dict[str, str]:
    return {"email": page.gettext("A user with this e-mail address already exists."),
            "team_id": page.gettext("This team no longer exists; reload the page.")}


def _team_messages(page: Page) -> dict[str, str]:
    return {"name": page.gettext("Another team already has this name.")}


@router.get("/settings/users", name="settings_users")
def users(page: AdminPage, session: DbSession) -> Response:
    return _users_page(page, session)


@router.post("/settings/users", name="settings_user_invite")
def invite_user(page: AdminPage, session: DbSession, form: Form) -> Response:
    """Create the account with a random first password, shown to the admin on the answer
    page only; the admin hands it over and the person signs in with it."""
    labels = _labels(page)
    password = secrets.token_urlsafe(FIRST_PASSWORD_BYTES)
    try:
        data = validated(page, "invite", UserCreate, {
            "name": text(form, "name"), "email": text(form, "email"), "role": text(form, "role") or "rep",
            "team_id": _team_id(form), "password": password,
        }, form, labels)
        user = attempt(session, page, "invite", form, labels,
                       lambda: auth_service.create_user(session, viewer(page), data, source="web"),
                       _user_messages(page))
    except FormRefused as refused:
        return _users_page(page, session, refused.state, refused.status_code)
    return _users_page(page, session, invited={"user": user, "password": password})


@router.post("/settings/users/{user_id:int}", name="settings_user_update")
def update_user(page: AdminPage, session: DbSession, form: Form, user_id: int) -> Response:
    labels = _labels(page)
    form_id = f"user-{user_id}"
    target = session.get(User, user_id)
    if target is None:
        raise NotFound(f"user {user_id} not found")
    try:
        data = validated(page, form_id, UserUpdate, {
            "version": text(form, "version"), "role": text(form, "role"), "team_id": _team_id(form),
            "is_active": checked(form, "is_active"),
        }, form, labels)
        # Rule: the last active admin stays one; otherwise nobody could open these pages again.
        stays_admin = data.role == Role.admin and data.is_active
        if target.role == Role.admin and target.is_active and not stays_admin \
                and sq.active_admins(session) == [target.id]:
            raise refuse(page, form_id, form, "role", page.gettext(
                "%(name)s is the last active admin. Make someone else an admin first.", name=target.name),
                labels, 409)
        attempt(session, page, form_id, form, labels,
                lambda: auth_service.update_user(session, viewer(page), user_id, data), _user_messages(page))
    except FormRefused as refused:
        return _users_page(page, session, refused.state, refused.status_code)
    return _after_commit_clear_tokens(redirect(page, f"/settings/users?saved=user#user-{user_id}"))


@router.post("/settings/teams", name="settings_team_create")
def create_team(page: AdminPage, session: DbSession, form: Form) -> Response:
    labels = _labels(page)
    try:
        data = validated(page, "add-team", TeamCreate, {"name": text(form, "name")}, form, labels)
        attempt(session, page, "add-team", form, labels,
                lambda: auth_service.create_team(session, viewer(page), data), _team_messages(page))
    except FormRefused as refused:
        return _users_page(page, session, refused.state, refused.status_code)
    return redirect(page, "/settings/users?saved=team#teams")


@router.post("/settings/teams/{team_id:int}", name="settings_team_update")
def rename_team(page: AdminPage, session: DbSession, form: Form, team_id: int) -> Response:
    labels = _labels(page)
    form_id = f"team-{team_id}"
    if session.get(Team, team_id) is None:
        raise NotFound(f"team {team_id} not found")
    try:
        data = validated(page, form_id, TeamUpdate, {"name": text(form, "name")}, form, labels)
        attempt(session, page, form_id, form, labels,
                lambda: auth_service.update_team(session, viewer(page), team_id, data), _team_messages(page))
    except FormRefused as refused:
        return _users_page(page, session, refused.state, refused.status_code)
    return redirect(page, "/settings/users?saved=team#teams")


# --------------------------------------------------------------------------- API tokens


def _tokens_page(page: Page, session: Session, state: FormState | None = None, status_code: int = 200,
                 created: dict[str, Any] | None = None) -> Response:
    me = viewer(page)
    every = sq.all_tokens(session)
    return show(page, "settings/tokens.html", {
        "mine": [t for t in every if t.token.user_id == me.id], "every": every,
        "state": state or FormState(), "created": created,
    }, section="tokens", status_code=status_code, headers=NO_STORE if created else None)


@router.get("/settings/tokens", name="settings_tokens")
def tokens(page: AdminPage, session: DbSession) -> Response:
    return _tokens_page(page, session)


@router.post("/settings/tokens", name="settings_token_create")
def create_token(page: AdminPage, session: DbSession, form: Form) -> Response:
    """A token for the signed-in admin, shown on this answer only (the database keeps its
    SHA-256)."""
    name = text(form, "name")
    if len(name) > 120:
        refused = refuse(page, "token", form, "name", page.gettext("At most %(max)s characters.", max=120),
                         {"name": page.gettext("Token name")})
        return _tokens_page(page, session, refused.state, refused.status_code)
    token, row = auth_service.create_token(session, viewer(page), name)
    return _tokens_page(page, session, created={"token": token, "row": row})


@router.post("/settings/tokens/{token_id:int}/revoke", name="settings_token_revoke")
def revoke_token(page: AdminPage, session: DbSession, token_id: int) -> Response:
    auth_service.revoke_token(session, viewer(page), token_id)
    return _after_commit_clear_tokens(redirect(page, "/settings/tokens?saved=token-revoked"))
