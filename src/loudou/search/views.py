"""The global search: ``/search?q=`` (results grouped by kind) and ``/search/suggest``
(the top bar's drop-down of the best matches while typing)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from loudou.search import queries as search_queries
from loudou.web import party_pages as pp
from loudou.web.deps import DbSession
from loudou.web.pages import CurrentPage
from loudou.web.templating import is_htmx, render

router = APIRouter(include_in_schema=False)

#: Matches shown per kind on the results page and in the drop-down.
PAGE_LIMIT = 20
SUGGEST_LIMIT = 5


class SearchQuery(BaseModel):
    q: str = Field(default="", max_length=200)


@router.get("/search", name="search", response_class=HTMLResponse)
def search_page(request: Request, page: CurrentPage, session: DbSession) -> Response:
    query = pp.parse_filters(request, SearchQuery).q.strip()
    results = search_queries.search(session, pp.viewer_of(page), query, PAGE_LIMIT)
    values = {"search_q": query, "results": results, "limit": PAGE_LIMIT,
              "stages": pp.stages_by_id(session), **pp.display_helpers(page)}
    return render(page, "search/results.html", values, block="results" if is_htmx(request) else None)


@router.get("/search/suggest", name="search_suggest", response_class=HTMLResponse)
def search_suggest(request: Request, page: CurrentPage, session: DbSession) -> Response:
    query = pp.parse_filters(request, SearchQuery).q.strip()
    results = search_queries.search(session, pp.viewer_of(page), query, SUGGEST_LIMIT)
    return render(page, "search/_suggest.html", {"results": results, **pp.display_helpers(page)})
