"""The command line: users, tokens and migrations against a real database file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loudou.cli import app
from loudou.config import get_settings
from loudou.db import set_database

runner = CliRunner()


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("LOUDOU_DATABASE_URL", url)
    get_settings.cache_clear()
    set_database(None)
    yield url
    set_database(None)
    get_settings.cache_clear()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_user_create_list_and_token(cli_db: str) -> None:
    code, out = invoke("user", "create", "--email", "Boss@Example.com", "--name", "Boss", "--role", "manager",
                       "--team", "East", "--password", "s3cret-pass")
    assert code == 0, out
    code, out = invoke("user", "create", "--email", "rep@example.com", "--name", "Rep", "--role", "rep",
                       "--team", "East", "--password", "s3cret-pass")
    assert code == 0, out
    code, out = invoke("user", "list", "--format", "json")
    assert code == 0, out
    users = json.loads(out)
    assert [(u["email"], u["role"]) for u in users] == [("boss@example.com", "manager"), ("rep@example.com", "rep")]
    assert users[0]["team_id"] == users[1]["team_id"] is not None
    assert set(users[0]) >= {"id", "email", "name", "role", "team_id"}
    code, out = invoke("token", "create", "--email", "rep@example.com")
    assert code == 0, out
    token = out.strip().splitlines()[-1]
    assert token.startswith("ldu_") and len(token) > 30

    from fastapi.testclient import TestClient

    from loudou.app import create_app

    with TestClient(create_app()) as client:
        r = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["email"] == "rep@example.com"


def test_errors_name_the_option(cli_db: str) -> None:
    code, out = invoke("user", "create", "--email", "bad", "--name", "X", "--password", "s3cret-pass")
    assert code == 2 and "email" in out
    code, out = invoke("user", "create", "--email", "a@example.com", "--name", "X", "--password", "short")
    assert code == 2 and "password" in out
    code, out = invoke("token", "create", "--email", "nobody@example.com")
    assert code == 2 and "no user" in out
    code, out = invoke("user", "create", "--email", "a@example.com", "--name", "X", "--role", "king",
                       "--password", "s3cret-pass")
    assert code == 2


def test_migrate_reports_revision(cli_db: str) -> None:
    code, out = invoke("migrate")
    assert code == 0 and "revision" in out


def test_help_explains_commands() -> None:
    code, out = invoke("--help")
    assert code == 0
    for command in ("serve", "migrate", "demo", "user", "token"):
        assert command in out


def test_report_funnel_json(cli_db: str) -> None:
    code, out = invoke("user", "create", "--email", "r@example.com", "--name", "R", "--role", "rep",
                       "--team", "East", "--password", "s3cret-pass")
    assert code == 0, out
    code, out = invoke("report", "funnel", "--from", "2020-01-01", "--to", "2030-12-31", "--format", "json")
    assert code == 0, out
    body = json.loads(out)
    assert body["cohort_size"] == 0 and len(body["stages"]) == 5 and body["won"] == 0
    code, out = invoke("report", "funnel", "--from", "2020-01-02", "--to", "2020-01-01", "--format", "json")
    assert code == 2 and "to" in out
    code, out = invoke("report", "funnel", "--from", "2020-01-01", "--to", "2020-02-01", "--team", "Nope")
    assert code == 2 and "--team" in out
    code, out = invoke("analytics", "rebuild", "--check")
    assert code == 0, out
