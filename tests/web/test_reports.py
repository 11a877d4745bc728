"""Report pages, exports and the dashboard through HTTP, on SQLite and PostgreSQL: every
report renders for every role, figures follow the access policy, bad filters are named,
exports open, and drill-down links lead to the deals behind a number.

Test world (tests/conftest.py): alice admin; bob manager and carol rep of team East;
dave rep and erin manager of team West.
"""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from loudou.analytics.reports import all_reports
from loudou.auth.models import User
from loudou.db import Database
from loudou.deal import service as deal_service
from loudou.deal.schemas import DealCreate
from tests.conftest import People
from tests.web.conftest import sign_in_page

REPORT_NAMES = sorted(all_reports())


def deals(db: Database, who: User, n: int) -> None:
    with db.session_scope() as s:
        for i in range(n):
            deal_service.create_deal(s, who, DealCreate(title=f"{who.name} deal {i}", amount=1000 * (i + 1)))


def export_rows(client: TestClient, url: str) -> list[list[str]]:
    r = client.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))


@pytest.mark.parametrize("persona", ["alice", "bob", "carol"])
def test_every_report_page_renders_for_every_role(client: TestClient, db: Database, people: People,
                                                  persona: str) -> None:
    deals(db, people.carol, 2)
    deals(db, people.dave, 1)
    sign_in_page(client, getattr(people, persona))
    for name in REPORT_NAMES:
        r = client.get(f"/reports/{name}")
        assert r.status_code == 200, (name, r.text[-2000:])
        assert 'data-testid="report-filters"' in r.text
        assert "CSV" in r.text and "XLSX" in r.text, name
    index = client.get("/reports")
    assert index.status_code == 200
    for name in REPORT_NAMES:
        assert f'data-testid="report-card-{name}"' in index.text
    assert client.get("/dashboard").status_code == 200


def test_figures_follow_the_access_policy(client: TestClient, db: Database, people: People) -> None:
    deals(db, people.carol, 2)
    deals(db, people.dave, 3)
    expected = {"carol": 2, "bob": 2, "dave": 3, "erin": 3, "alice": 5}
    for persona, n in expected.items():
        sign_in_page(client, getattr(people, persona))
        rows = export_rows(client, "/reports/funnel/export.csv?table=stages")
        assert rows[0][:2] == ["Stage", "Reached"]
        assert int(rows[1][1]) == n, persona
        snapshot = export_rows(client, "/reports/snapshot/export.csv")
        assert int(snapshot[1][1]) == n, persona


def test_a_bad_filter_is_named_and_nothing_is_computed(client: TestClient, people: People) -> None:
    sign_in_page(client, people.bob)
    r = client.get("/reports/funnel?from=2026-02-30")
    assert r.status_code == 422
    assert re.search(r'data-testid="filter-error">From: ', r.text), r.text[-1500:]
    r = client.get("/reports/funnel?from=2026-03-01&to=2026-02-01")
    assert r.status_code == 422 and "must not be before" in r.text
    r = client.get("/reports/funnel?interval=decade")
    assert r.status_code == 422 and 'data-testid="filter-error">Interval: ' in r.text
    assert client.get("/reports/funnel/export.csv?owner_id=x").status_code == 422
    assert client.get("/reports/no-such-report").status_code == 404
    assert client.get("/reports/funnel/export.csv?table=nope").status_code == 422


def test_exports_open_in_a_spreadsheet_and_speak_the_user_language(client: TestClient, db: Database,
                                                                   people: People) -> None:
    deals(db, people.carol, 1)
    sign_in_page(client, people.alice)
    r = client.get("/reports/funnel/export.xlsx?table=stages")
    assert r.status_code == 200
    assert "attachment" in r.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][:2] == ("Stage", "Reached")
    assert values[1][1] == 1  # a number, not text
    rows = export_rows(client, "/reports/funnel/export.csv?table=stages")
    client.headers["Accept-Language"] = "zh-CN"
    try:
        zh = export_rows(client, "/reports/funnel/export.csv?table=stages")
    finally:
        client.headers["Accept-Language"] = "en"
    assert zh[0][:2] == ["阶段", "到达"]
    assert rows[1][0] != zh[1][0]  # stage names in each language


def test_numbers_drill_down_to_the_deals_behind_them(client: TestClient, db: Database, people: People) -> None:
    deals(db, people.carol, 2)
    deals(db, people.dave, 1)
    sign_in_page(client, people.bob)
    page = client.get("/reports/funnel").text
    links = re.findall(r'<a href="(/deals\?[^"]+)"[^>]*data-testid="drill"', page)
    assert links, "every stage row links to its deals"
    first = links[0].replace("&amp;", "&")
    params = parse_qs(urlparse(first).query)
    assert "reached_stage_id" in params and "created_from" in params
    listed = client.get(first)
    assert listed.status_code == 200
    assert listed.text.count('data-deal-id="') >= 2  # carol's two deals; dave's is another team's
    assert "Dave" not in listed.text


def test_dashboard_fits_the_role(client: TestClient, db: Database, people: People) -> None:
    deals(db, people.carol, 2)
    sign_in_page(client, people.carol)
    rep = client.get("/dashboard")
    assert rep.status_code == 200 and 'data-testid="widget-funnel"' in rep.text
    sign_in_page(client, people.bob)
    manager = client.get("/dashboard?from=2020-01-01")
    assert manager.status_code == 200 and 'data-testid="widget-funnel"' in manager.text
    assert 'value="2020-01-01"' in manager.text  # the filters stay in the form and the URL


def test_pages_need_a_sign_in(client: TestClient) -> None:
    client.cookies.clear()
    for path in ("/dashboard", "/reports", "/reports/funnel", "/reports/funnel/export.csv"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code in (302, 303), path
        assert "/login" in r.headers["location"]


def test_dashboard_layouts_name_real_reports_and_tables(client: TestClient, db: Database, people: People) -> None:
    from loudou.analytics.filters import ReportFilters
    from loudou.analytics.views import REP_DASHBOARD, TEAM_DASHBOARD

    deals(db, people.carol, 1)
    filters = ReportFilters.model_validate({"from": "2026-01-01", "to": "2026-12-31"})
    with db.session_scope(write=False) as s:
        for layout in (REP_DASHBOARD, TEAM_DASHBOARD):
            for name, keys, _rows in layout:
                spec = all_reports()[name]
                tables = {t.key for t in spec.tables(spec.compute(s, people.alice, filters), filters)}
                assert set(keys) <= tables, (name, keys, tables)
    for who, layout in ((people.carol, REP_DASHBOARD), (people.bob, TEAM_DASHBOARD)):
        sign_in_page(client, who)
        page = client.get("/dashboard").text
        for name, keys, _rows in layout:
            assert f'data-testid="widget-{name}"' in page
            for key in keys:
                assert f'data-testid="table-{key}"' in page, (name, key)


def test_a_drilled_deal_list_names_its_filters(client: TestClient, db: Database, people: People) -> None:
    deals(db, people.carol, 1)
    sign_in_page(client, people.bob)
    page = client.get("/reports/funnel").text
    link = re.findall(r'<a href="(/deals\?[^"]+)"[^>]*data-testid="drill"', page)[1].replace("&amp;", "&")
    listed = client.get(link).text
    assert 'data-testid="drill-filter-reached_stage_id"' in listed
    assert "Reached stage: First contact" in listed
    assert 'type="hidden" name="reached_stage_id"' in listed  # kept when other filters change
    assert listed.count('data-deal-id="') == 0  # carol's deal never reached the second stage
