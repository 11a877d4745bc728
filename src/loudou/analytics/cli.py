"""``loudou report NAME``: every analytics figure at the command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from loudou.analytics import output as output_mod
from loudou.analytics.filters import ReportFilters
from loudou.analytics.reports import ReportSpec, all_reports
from loudou.auth import service as auth_service
from loudou.auth.models import Role, Team, User
from loudou.channel.models import Channel
from loudou.db import get_database
from loudou.product.models import Product

report_app = typer.Typer(
    help="Analytics reports. Every report takes a period (--from/--to, UTC days, inclusive), the "
    "filters --pipeline, --team, --owner, --channel, --product, --segment, and --format "
    "table|json|csv|xlsx. `loudou report NAME --help` explains one report.",
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
ProductOpt = Annotated[str | None, typer.Option("--product", help="Product name.")]
SegmentOpt = Annotated[str | None, typer.Option("--segment", help="Company segment (industry).")]
IntervalOpt = Annotated[str, typer.Option("--interval", help="Trend buckets: week, month or quarter.")]
TableOpt = Annotated[str | None, typer.Option("--table", help="Which table to print or export (default: all "
                                              "for table, the first for csv/xlsx).")]

#: The operator at the command line sees everything unless --as narrows it.
OPERATOR = User(id=0, email="operator@localhost", name="operator", role=Role.admin, is_active=True, team_id=None)


def _fail(option: str, message: str) -> None:
    err.print(f"[red]error[/red] ({option}): {message}")
    raise typer.Exit(code=2)


def _filters(session: Any, date_from: str, date_to: str, pipeline: int | None, team: str | None, owner: str | None,
             channel: str | None, strict: bool = False, *, product: str | None = None, segment: str | None = None,
             interval: str = "month") -> ReportFilters:
    from pydantic import ValidationError

    values: dict[str, Any] = {"from": date_from, "to": date_to, "pipeline_id": pipeline, "strict": strict,
                              "interval": interval, "industry": segment or None}
    if product:
        found_product = session.query(Product).filter(Product.name == product).first()
        if found_product is None:
            _fail("--product", f"no product named {product}")
        values["product_id"] = found_product.id
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
        option = {"date_from": "from", "date_to": "to", "industry": "segment", "product_id": "product"}.get(loc, loc)
        _fail("--" + option, first["msg"])
        raise AssertionError("unreachable") from exc


def _viewer(session: Any, as_email: str | None) -> User:
    if not as_email:
        return OPERATOR
    user = auth_service.get_user_by_email(session, as_email)
    if user is None:
        _fail("--as", f"no user with e-mail {as_email}")
    return user  # type: ignore[return-value]


def _emit(spec: ReportSpec, result: dict[str, Any], filters: ReportFilters, fmt: str, output: Path | None,
          table_key: str | None) -> None:
    tables = spec.tables(result, filters)
    if fmt == "json":
        typer.echo(json.dumps(result, ensure_ascii=False, default=str))
        return
    if fmt == "table":
        for table in tables if table_key is None else [t for t in tables if t.key == table_key]:
            view = Table(*(c.label for c in table.columns), title=f"{table.title} [{table.key}]")
            for row in table.rows:
                view.add_row(*(output_mod.text_cell(c, row.get(c.key)) for c in table.columns))
            console.print(view)
        return
    if fmt not in ("csv", "xlsx"):
        _fail("--format", "use table, json, csv or xlsx")
    chosen = output_mod.find_table(tables, table_key)
    if chosen is None:
        _fail("--table", f"{spec.name} has the tables {', '.join(t.key for t in tables)}")
    assert chosen is not None
    if fmt == "csv":
        data = b"".join(output_mod.table_csv(chosen))
        if output:
            output.write_bytes(data)
        else:
            sys.stdout.write(data.decode("utf-8-sig"))
        return
    if output is None:
        _fail("--output", "xlsx needs a file: --output report.xlsx")
    assert output is not None
    output.write_bytes(b"".join(output_mod.table_xlsx(chosen)))


def _run(spec: ReportSpec, date_from: str, date_to: str, pipeline: int | None, team: str | None,
         owner: str | None, channel: str | None, product: str | None, segment: str | None, interval: str,
         strict: bool, as_user: str | None, fmt: str, output: Path | None, table_key: str | None) -> None:
    from loudou.cli import run_migrations

    run_migrations()
    with get_database().session_scope(write=False) as session:
        filters = _filters(session, date_from, date_to, pipeline, team, owner, channel, strict,
                           product=product, segment=segment, interval=interval)
        result = spec.compute(session, _viewer(session, as_user), filters)
    _emit(spec, result, filters, fmt, output, table_key)


def _command(spec: ReportSpec) -> Callable[..., None]:
    command: Callable[..., None]
    if "strict" in spec.extra_options:
        def with_strict(
            date_from: From, date_to: To, pipeline: PipelineOpt = None, team: TeamOpt = None,
            owner: OwnerOpt = None, channel: ChannelOpt = None, product: ProductOpt = None,
            segment: SegmentOpt = None, strict: StrictOpt = False, as_user: AsOpt = None,
            format: FormatOpt = "table", output: OutOpt = None, table: TableOpt = None,
        ) -> None:
            _run(spec, date_from, date_to, pipeline, team, owner, channel, product, segment, "month", strict,
                 as_user, format, output, table)
        command = with_strict
    else:
        def plain(
            date_from: From, date_to: To, pipeline: PipelineOpt = None, team: TeamOpt = None,
            owner: OwnerOpt = None, channel: ChannelOpt = None, product: ProductOpt = None,
            segment: SegmentOpt = None, interval: IntervalOpt = "month", as_user: AsOpt = None,
            format: FormatOpt = "table", output: OutOpt = None, table: TableOpt = None,
        ) -> None:
            _run(spec, date_from, date_to, pipeline, team, owner, channel, product, segment, interval, False,
                 as_user, format, output, table)
        command = plain
    command.__doc__ = f"{spec.summary} Period: {spec.period_meaning.lower()}."
    return command


def _register_commands() -> None:
    for spec in all_reports().values():
        report_app.command(spec.name, help=f"{spec.title}: {spec.summary} (Period: {spec.period_meaning}.)")(
            _command(spec))


_register_commands()


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
