"""Request dependencies: the database session (one transaction per request) and the viewer."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from loudou.auth import service as auth_service
from loudou.auth.models import User
from loudou.db import Database
from loudou.errors import LoudouError

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotAuthenticated(LoudouError):
    status_code = 401


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def db_session(request: Request) -> Iterator[Session]:
    """Reads run in a deferred transaction; writes take SQLite's write lock up front
    (BEGIN IMMEDIATE) so concurrent writers queue instead of failing. Commits before the
    response is sent (scope="function" below), so a failed commit is never a 200."""
    db = get_db(request)
    factory = db.read_session if request.method in READ_METHODS else db.write_session
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DbSession = Annotated[Session, Depends(db_session, scope="function")]


async def read_connection(request: Request) -> AsyncIterator[sa.Connection]:
    """A plain connection for hot read paths served by ``async def`` routes: no thread
    hop, no ORM. Only for point and page reads that take well under a millisecond; a
    slow query here would block the event loop, so analytics stay in ``def`` routes."""
    with get_db(request).engine.connect() as conn:
        yield conn


ReadConnection = Annotated[sa.Connection, Depends(read_connection)]


class TokenCache:
    """Token hash → user, for a few seconds: saves a join per API call. Revoking a token or
    disabling a user clears this process's cache at once; other processes within TTL."""

    TTL_S = 10.0

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, User]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> User | None:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, key: str, user: User) -> None:
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.TTL_S, user)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


token_cache = TokenCache()
_bearer = HTTPBearer(auto_error=False, description="API token from `loudou token create`")


def user_from_token(db: Database, token: str) -> User | None:
    key = auth_service.hash_token(token)
    user = token_cache.get(key)
    if user is None:
        with db.read_session() as session:
            user = auth_service.user_for_token(session, token)
            if user is not None:
                session.expunge(user)
        if user is not None:
            token_cache.put(key, user)
    return user


def _viewer(request: Request, token: str | None) -> User:
    if not token:
        raise NotAuthenticated("missing bearer token (Authorization: Bearer <token>)")
    user = user_from_token(get_db(request), token)
    if user is None:
        raise NotAuthenticated("invalid or revoked API token")
    return user


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    token = credentials.credentials if credentials and credentials.scheme.lower() == "bearer" else None
    return _viewer(request, token)


CurrentUser = Annotated[User, Depends(current_user)]

#: OpenAPI for routes that authenticate with :func:`authenticate` instead of a dependency.
BEARER_SECURITY: dict[str, Any] = {"security": [{"HTTPBearer": []}]}


def authenticate(request: Request) -> User:
    """The viewer of a hot-path route, without FastAPI's dependency machinery (which costs
    more than the query on a point read). Same rules as :data:`CurrentUser`."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return _viewer(request, token.strip() if scheme.lower() == "bearer" else None)
