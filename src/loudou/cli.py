"""The ``loudou`` command: serve, migrate, demo data, users and API tokens."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from loudou import migrate as migrations
from loudou import models  # noqa: F401  (every table, and the derived-table upkeep on writes)
from loudou.analytics.cli import analytics_app, report_app
from loudou.auth import service as auth_service
from loudou.auth.models import Role
from loudou.auth.schemas import UserCreate
from loudou.config import get_settings
from loudou.db import get_database
from loudou.demo.cli import demo_command
from loudou.errors import LoudouError
from loudou.pipeline import service as pipeline_service

app = typer.Typer(
    help="Loudou (漏斗): a self-hosted sales-funnel CRM. Run `loudou COMMAND --help` for details.",
    no_args_is_help=True,
    add_completion=False,
)
user_app = typer.Typer(help="Create and list users.", no_args_is_help=True)
token_app = typer.Typer(help="Create API tokens for the REST API.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(report_app, name="report")
app.add_typer(analytics_app, name="analytics")
app.command("demo")(demo_command)

console = Console()
err_console = Console(stderr=True)


def _fail(exc: LoudouError) -> None:
    field = getattr(exc, "field", None)
    err_console.print(f"[red]error[/red]{f' ({field})' if field else ''}: {exc.detail}")
    raise typer.Exit(code=2)


def run_migrations() -> None:
    """Bring the schema to the latest version and make sure the default funnel exists."""
    db = get_database()
    migrations.upgrade(db.engine)
    with db.session_scope() as session:
        pipeline_service.ensure_reference_data(session)


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (LOUDOU_DATABASE_URL) to the latest version."""
    run_migrations()
    console.print(f"database is at revision {migrations.current_revision(get_database().engine)}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (2 suits a 2-core machine).")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Migrate the database, then serve the web app and the REST API."""
    import uvicorn

    run_migrations()
    settings = get_settings()
    uvicorn.run(
        "loudou.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        reload=reload,
        access_log=False,
    )


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="Login e-mail address (unique).")],
    name: Annotated[str, typer.Option(help="Display name.")],
    password: Annotated[str, typer.Option(help="At least 8 characters.")],
    role: Annotated[Role, typer.Option(help="admin sees all; manager their team; rep their own.")] = Role.rep,
    team: Annotated[str | None, typer.Option(help="Team name; created if it does not exist.")] = None,
) -> None:
    """Create a user (and their team if needed)."""
    run_migrations()
    from pydantic import ValidationError

    try:
        with get_database().session_scope() as session:
            team_id = auth_service.ensure_team(session, team).id if team else None
            user = auth_service.create_user(
                session, None,
                UserCreate(email=email, name=name, role=role, team_id=team_id, password=password),
                source="cli",
            )
            console.print(f"created user {user.id}: {user.email} ({user.role.value})")
    except LoudouError as exc:
        _fail(exc)
    except ValidationError as exc:
        first = exc.errors()[0]
        err_console.print(f"[red]error[/red] ({first['loc'][0]}): {first['msg']}")
        raise typer.Exit(code=2) from exc


@user_app.command("list")
def user_list(
    format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """List users."""
    run_migrations()
    with get_database().session_scope(write=False) as session:
        users = auth_service.list_users(session)
        rows = [
            {"id": u.id, "email": u.email, "name": u.name, "role": u.role.value, "team_id": u.team_id,
             "is_active": u.is_active}
            for u in users
        ]
    if format == "json":
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    if format != "table":
        err_console.print("[red]error[/red] (--format): use table or json")
        raise typer.Exit(code=2)
    columns = ("id", "email", "name", "role", "team_id", "is_active")
    table = Table(*columns)
    for r in rows:
        table.add_row(*("" if r[k] is None else str(r[k]) for k in columns))
    console.print(table)


@token_app.command("create")
def token_create(
    email: Annotated[str, typer.Option(help="The user the token acts as.")],
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "",
) -> None:
    """Create an API token. It is printed once, alone on the last line; store it safely."""
    run_migrations()
    with get_database().session_scope() as session:
        user = auth_service.get_user_by_email(session, email)
        if user is None:
            err_console.print(f"[red]error[/red] (--email): no user with email {email}")
            raise typer.Exit(code=2)
        try:
            token, _row = auth_service.create_token(session, user, name)
        except LoudouError as exc:
            _fail(exc)
    console.print(f"API token for {email} (shown once; use it as 'Authorization: Bearer <token>'):")
    typer.echo(token)


if __name__ == "__main__":
    app()
