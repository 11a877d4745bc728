"""``loudou report NAME``: every analytics figure at the command line."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from loudou.analytics import funnel
from loudou.analytics.filters import ReportFilters
from loudou.auth import service as auth_service
from loudou.auth.models import Role, Team, User
from loudou.channel.models import Channel
from loudou.db import get_database

report_app = typer.Typer(
    help="Analytics reports. Every report takes a period (--from/--to, UTC days, inclusive) and the "
    "filters --pipeline, --team, --owner, --channel; --format table|json|csv|xlsx.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)

From = Annotated[str, typer.Option("--from", help="First day of the period, YYYY-MM-DD.")]
To = Annotated[str, typer.Option("--to", help="Last day of the period, YYYY-MM-DD (included).")]
PipelineOpt = Annotated[int | None, typer.Option("--pipeline", help="Pipeline id (default pipeline if omitted).")]
TeamOpt = Annotated[str | None, typer.Option("--team", help="Team name.")]
OwnerOpt = Annotated[str | None, typer.Option("--owner", help="Owner's e-mail.")]
ChannelOpt = Annotated[str | None, typer.Option("--channel", help="Channel name (zh or en).")]
AsOpt = Annotated[str | None, typer.Option("--as", help="See the report as this user (e-mail) would.")]
FormatOpt = Annotated[str, typer.Option("--format", help="table, json, csv or xlsx.")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Count a stage only if all earlier ones were reached.")]
OutOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write csv/xlsx here (default: stdout for csv).")]

#: The operator at the command line sees everything unless --as narrows it.
OPERATOR = User(id=0, email="operator@localhost", name="operator", role=Role.admin, is_active=True, team_id=None)


def _fail(option: str, message: str) -> None:
    err.print(f"[red]error[/red] ({option}): {message}")
    raise typer.Exit(code=2)


def _filters(session: Any, date_from: str, date_to: str, pipeline: int | None, team: str | None, owner: str | None,
             channel: str | None, strict: bool = False) -> ReportFilters:
    from pydantic import ValidationError

    values: dict[str, Any] = {"from": date_from, "to": date_to, "pipeline_id": pipeline, "strict": strict}
    if team:
        found = session.query(Team).filter(Team.name == team).first()
        if found is None:
            _fail("--team", f"no team named {team}")
        values["team_id"] = found.id
    if owner:
        user = auth_service.get_user_by_email(session, owner)
        if user is None:
            _fail("--owner", f"no user with e-mail {owner}")
        values["owner_id"] = user.id  # type: ignore[union-attr]
    if channel:
        found_channel = session.query(Channel).filter((Channel.name == channel) | (Channel.name_en == channel)).first()
        if found_channel is None:
            _fail("--channel", f"no channel named {channel}")
        values["channel_id"] = found_channel.id
    try:
        return ReportFilters.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = str(first["loc"][0]) if first["loc"] else "from"
        _fail("--" + {"date_from": "from", "date_to": "to"}.get(loc, loc), first["msg"])
        raise AssertionError("unreachable") from exc


def _viewer(session: Any, as_email: str | None) -> User:
    if not as_email:
        return OPERATOR
    user = auth_service.get_user_by_email(session, as_email)
    if user is None:
        _fail("--as", f"no user with e-mail {as_email}")
    return user  # type: ignore[return-value]


def _emit(result: dict[str, Any], rows: list[dict[str, Any]], columns: list[str], fmt: str, output: Path | None,
          title: str) -> None:
    if fmt == "json":
        typer.echo(json.dumps(result, ensure_ascii=False, default=str))
    elif fmt == "table":
        table = Table(*columns, title=title)
        for row in rows:
            table.add_row(*("" if row.get(c) is None else f"{row[c]:.4g}" if isinstance(row.get(c), float)
                            else str(row[c]) for c in columns))
        console.print(table)
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        if output:
            output.write_text(buf.getvalue(), encoding="utf-8-sig")
        else:
            sys.stdout.write(buf.getvalue())
    elif fmt == "xlsx":
        from openpyxl import Workbook

        if output is None:
            _fail("--output", "xlsx needs a file: --output report.xlsx")
        wb = Workbook()
        ws = wb.active
        ws.title = title[:31]
        ws.append(columns)
        for row in rows:
            ws.append([row.get(c) for c in columns])
        wb.save(output)
    else:
        _fail("--format", "use table, json, csv or xlsx")


@report_app.command("funnel")
def funnel_command(
    date_from: From, date_to: To, pipeline: PipelineOpt = None, team: TeamOpt = None, owner: OwnerOpt = None,
    channel: ChannelOpt = None,
    strict: StrictOpt = False,
    as_user: AsOpt = None, format: FormatOpt = "table", output: OutOpt = None,
) -> None:
    """Cohort funnel: of the deals created in the period, how many reached each stage, with
    conversion from the previous stage and its 95% interval, and time in stage."""
    from loudou.cli import run_migrations

    run_migrations()
    with get_database().session_scope(write=False) as session:
        filters = _filters(session, date_from, date_to, pipeline, team, owner, channel, strict)
        result = funnel.cohort_funnel(session, _viewer(session, as_user), filters)
    columns = ["stage_id", "name", "reached", "conversion_from_previous", "ci_low", "ci_high",
               "median_days_in_stage", "p90_days_in_stage"]
    _emit(result, result["stages"], columns, format, output, "funnel")


analytics_app = typer.Typer(help="Maintain the derived analytics state.", no_args_is_help=True)


@analytics_app.command("rebuild")
def rebuild_command(
    check: Annotated[bool, typer.Option("--check", help="Only verify; change nothing.")] = False,
) -> None:
    """Recompute every derived value (time in stage, stages reached, last activity…) from the
    raw history and prove the stored values match. Exit code 1 if a mismatch remains."""
    from loudou.analytics import rebuild as rebuild_mod
    from loudou.cli import run_migrations

    run_migrations()
    db = get_database()
    if check:
        with db.engine.connect() as conn:
            results = rebuild_mod.verify(conn)
    else:
        results = rebuild_mod.rebuild(db)
    table = Table("table", "column", "mismatches", title="derived state " + ("check" if check else "rebuild"))
    for r in results:
        table.add_row(r.table, r.column, str(r.mismatches))
    console.print(table)
    if rebuild_mod.has_mismatches(results):
        raise typer.Exit(code=1)
