"""Users, teams, passwords and API tokens."""

from __future__ import annotations

import hashlib
import secrets
import zoneinfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from loudou.audit import service as audit
from loudou.auth import policy
from loudou.auth.models import ApiToken, Role, Team, User
from loudou.auth.passwords import hash_password, verify_password
from loudou.auth.schemas import TeamCreate, TeamUpdate, UserCreate, UserUpdate
from loudou.db import utcnow
from loudou.errors import Conflict, NotFound, ValidationFailed
from loudou.pipeline.service import check_version

TOKEN_PREFIX = "ldu_"


def get_user_by_email(session: Session, email: str) -> User | None:
    return session.scalars(sa.select(User).where(sa.func.lower(User.email) == email.strip().lower())).first()


def get_team_by_name(session: Session, name: str) -> Team | None:
    return session.scalars(sa.select(Team).where(Team.name == name)).first()


def ensure_team(session: Session, name: str) -> Team:
    team = get_team_by_name(session, name)
    if team is None:
        team = Team(name=name)
        session.add(team)
        session.flush()
    return team


def _check_timezone(tz: str | None) -> None:
    if tz is None:
        return
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed(f"unknown time zone {tz!r}", field="timezone") from exc


def create_user(session: Session, viewer: User | None, data: UserCreate, *, source: str = "api") -> User:
    """Rule: e-mail addresses are unique, case-insensitively. ``viewer`` None means the
    operator at the command line, who may create anyone."""
    if viewer is not None:
        policy.ensure_admin(viewer)
    email = str(data.email).strip().lower()
    if get_user_by_email(session, email) is not None:
        raise ValidationFailed(f"a user with email {email} already exists", field="email")
    if data.team_id is not None and session.get(Team, data.team_id) is None:
        raise ValidationFailed(f"team_id {data.team_id} does not exist", field="team_id")
    _check_timezone(data.timezone)
    user = User(email=email, name=data.name, role=data.role, team_id=data.team_id,
                password_hash=hash_password(data.password), locale=data.locale, timezone=data.timezone,
                is_active=True)
    session.add(user)
    session.flush()
    audit.record(session, user_id=viewer.id if viewer else None, entity="user", entity_id=user.id,
                 action="create", changes=audit.snapshot(user, ["email", "name", "role", "team_id"]),
                 source=source)
    return user


def update_user(session: Session, viewer: User, user_id: int, data: UserUpdate) -> User:
    """Rule: users change their own name, password, locale and time zone; only admins
    change roles, teams and whether an account is active."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    values = data.model_dump(exclude_unset=True, exclude={"version", "password"})
    if viewer.id != user.id or {"role", "team_id", "is_active"} & values.keys():
        policy.ensure_admin(viewer)
    check_version(user, data.version, "user")
    leaves_admins = values.get("role", user.role) != Role.admin or values.get("is_active", user.is_active) is False
    if user.role == Role.admin and user.is_active and leaves_admins:
        others = session.scalar(sa.select(sa.func.count()).select_from(User).where(
            User.role == Role.admin, User.is_active.is_(True), User.id != user.id))
        if not others:
            # Rule: someone must always be able to open the settings.
            raise Conflict(f"{user.email} is the last active admin; make someone else an admin first")
    if values.get("team_id") is not None and session.get(Team, values["team_id"]) is None:
        raise ValidationFailed(f"team_id {values['team_id']} does not exist", field="team_id")
    _check_timezone(values.get("timezone"))
    changes = audit.apply_changes(user, values)
    if data.password is not None:
        user.password_hash = hash_password(data.password)
        changes["password"] = ("***", "***")
    audit.record(session, user_id=viewer.id, entity="user", entity_id=user.id, action="update", changes=changes)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(sa.select(User).order_by(User.id)))


def create_team(session: Session, viewer: User | None, data: TeamCreate) -> Team:
    if viewer is not None:
        policy.ensure_admin(viewer)
    if get_team_by_name(session, data.name) is not None:
        raise ValidationFailed(f"a team named {data.name} already exists", field="name")
    team = Team(name=data.name)
    session.add(team)
    session.flush()
    audit.record(session, user_id=viewer.id if viewer else None, entity="team", entity_id=team.id,
                 action="create", changes={"name": (None, team.name)})
    return team


def update_team(session: Session, viewer: User, team_id: int, data: TeamUpdate) -> Team:
    policy.ensure_admin(viewer)
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(f"team {team_id} not found")
    other = get_team_by_name(session, data.name)
    if other is not None and other.id != team.id:
        raise ValidationFailed(f"a team named {data.name} already exists", field="name")
    changes = audit.apply_changes(team, {"name": data.name})
    audit.record(session, user_id=viewer.id, entity="team", entity_id=team.id, action="update", changes=changes)
    session.flush()
    return team


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = get_user_by_email(session, email)
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        return None
    return user


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, user: User, name: str = "") -> tuple[str, ApiToken]:
    """Return the token (shown once) and its row; only the SHA-256 is stored."""
    if not user.is_active:
        raise Conflict(f"user {user.email} is disabled")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), prefix=token[:10])
    session.add(row)
    session.flush()
    audit.record(session, user_id=user.id, entity="api_token", entity_id=row.id, action="create",
                 source="cli")
    return token, row


def revoke_token(session: Session, viewer: User, token_id: int) -> None:
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != viewer.id and viewer.role != Role.admin):
        raise NotFound(f"api token {token_id} not found")
    row.revoked_at = utcnow()
    audit.record(session, user_id=viewer.id, entity="api_token", entity_id=row.id, action="revoke")
    session.flush()


def user_for_token(session: Session, token: str) -> User | None:
    stmt = (
        sa.select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None), User.is_active.is_(True))
    )
    return session.scalars(stmt).first()
