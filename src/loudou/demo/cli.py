"""``loudou demo``: fill the database with a realistic demo company."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from loudou.db import Database

console = Console()
err_console = Console(stderr=True)


class RichProgress:
    """The writer's progress reports as rich progress bars, one per table."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def start(self, key: str, description: str, total: int) -> None:
        if key in self.tasks:
            self.progress.update(self.tasks[key], total=total, description=description)
        else:
            self.tasks[key] = self.progress.add_task(description, total=total)

    def advance(self, key: str, n: int) -> None:
        if key in self.tasks:
            self.progress.advance(self.tasks[key], n)


def _print_logins(logins: list[tuple[str, str, str, str]]) -> None:
    table = Table(title="Demo logins", title_justify="left")
    for column in ("role", "email", "password", "name"):
        table.add_column(column)
    for row in logins:
        table.add_row(*row)
    console.print(table)


def _existing_logins(db: Database) -> list[tuple[str, str, str]]:
    """The demo's admin and its first manager and rep, if an earlier run created them."""
    import sqlalchemy as sa

    from loudou.demo.generator import ADMIN_EMAIL, DEMO_DOMAIN

    with db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT role, email, name FROM users WHERE email LIKE :domain ORDER BY id"),
                            {"domain": f"%@{DEMO_DOMAIN}"}).all()
    if not any(r.email == ADMIN_EMAIL for r in rows):
        return []
    first: dict[str, tuple[str, str, str]] = {}
    for r in rows:
        first.setdefault(r.role, (r.role, r.email, r.name))
    return [first[role] for role in ("admin", "manager", "rep") if role in first]


def demo_command(
    deals: Annotated[int, typer.Option(help="Number of deals to generate.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 42,
    locale: Annotated[str, typer.Option(help="zh for Chinese names, en for English.")] = "zh",
    truth: Annotated[Path | None, typer.Option(help="Write the generator's true parameters to this JSON file.")] = None,
    reset: Annotated[bool, typer.Option(help="Empty every business table first (keeps pipelines, "
                                             "lost reasons and channels).")] = False,
    if_empty: Annotated[bool, typer.Option(help="Do nothing (successfully) if the database already holds "
                                                "deals.")] = False,
) -> None:
    """Fill the database with a demo sales team, customers, 2 years of deals and activities.

    Refuses a database that already holds deals unless --reset (or --if-empty, which then
    leaves it alone). Every demo user's password is loudou-demo."""
    # Imported here: loudou.cli imports this module to register the command.
    from loudou.cli import run_migrations
    from loudou.db import get_database
    from loudou.demo import service, writer
    from loudou.demo.generator import DEMO_PASSWORD

    run_migrations()
    db = get_database()
    if if_empty and not reset:
        existing = writer.count_deals(db)
        if existing:
            console.print(f"The database already holds {existing} deals: no demo data written.")
            logins = _existing_logins(db)
            if logins:
                _print_logins([(role, email, DEMO_PASSWORD, name) for role, email, name in logins])
            return
    started = time.perf_counter()
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=False) as bars:
            plan = service.run(db, deals, seed, locale, reset=reset, progress=RichProgress(bars))
    except service.DemoRefused as exc:
        err_console.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(code=2) from exc
    elapsed = time.perf_counter() - started
    data = plan.truth()
    if truth is not None:
        truth.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        console.print(f"True parameters written to {truth}")
    counts = data["counts"]
    console.print(
        f"Demo company written in {elapsed:.1f} s: {counts['deals']:,} deals, {counts['transitions']:,} stage "
        f"transitions, {counts['activities']:,} activities, {counts['companies']:,} companies, "
        f"{counts['contacts']:,} contacts, {counts['users']} users in {counts['teams']} teams."
    )
    _print_logins([(x.role, x.email, x.password, x.name + (f" ({x.team})" if x.team else ""))
                   for x in plan.logins])
