from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from loudou.app import create_app
from loudou.auth import service as auth_service
from loudou.db import Database
from loudou.web.deps import token_cache
from tests.conftest import People


@dataclass
class Api:
    """A test client acting as one persona (bearer token)."""

    client: TestClient
    token: str

    def _h(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.client.get(url, headers=self._h(), **kw)

    def post(self, url: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.client.post(url, json=json, headers=self._h(), **kw)

    def patch(self, url: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.client.patch(url, json=json, headers=self._h(), **kw)

    def put(self, url: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.client.put(url, json=json, headers=self._h(), **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self.client.delete(url, headers=self._h(), **kw)


@dataclass
class Clients:
    anon: TestClient
    alice: Api
    bob: Api
    carol: Api
    dave: Api
    erin: Api


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    token_cache.clear()
    with TestClient(create_app(db)) as c:
        yield c


@pytest.fixture
def api(db: Database, people: People, client: TestClient) -> Clients:
    tokens = {}
    with db.session_scope() as s:
        for name in ("alice", "bob", "carol", "dave", "erin"):
            tokens[name] = auth_service.create_token(s, getattr(people, name))[0]
    return Clients(anon=client, **{n: Api(client, t) for n, t in tokens.items()})
