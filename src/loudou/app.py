"""The ASGI application: composition root of every router."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from loudou import (
    __version__,
    models,  # noqa: F401  (every table, and the derived-table upkeep on writes)
)
from loudou.activity import api as activity_api
from loudou.activity import views as activity_views
from loudou.analytics import api as analytics_api
from loudou.analytics import views as analytics_views
from loudou.auth import api as auth_api
from loudou.auth import views as auth_views
from loudou.channel import api as channel_api
from loudou.company import api as company_api
from loudou.company import views as company_views
from loudou.config import get_settings
from loudou.contact import api as contact_api
from loudou.contact import views as contact_views
from loudou.db import Database, get_database
from loudou.deal import api as deal_api
from loudou.deal.views import board as board_views
from loudou.deal.views import detail as deal_detail_views
from loudou.deal.views import list as deal_list_views
from loudou.pipeline import api as pipeline_api
from loudou.search import views as search_views
from loudou.settings import views as settings_views
from loudou.web import errors
from loudou.web.jsonio import OrjsonResponse
from loudou.web.sessions import LoginThrottle, SessionCodec
from loudou.web.templating import STATIC_DIR

API_ROUTERS = (deal_api.router, company_api.router, contact_api.router, activity_api.activities,
               activity_api.tasks, pipeline_api.router, auth_api.router, channel_api.router, analytics_api.router)
PAGE_ROUTERS = (auth_views.router, board_views.router, deal_list_views.router, deal_detail_views.router,
                company_views.router, contact_views.router, activity_views.router, search_views.router,
                settings_views.router, analytics_views.router)


def create_app(db: Database | None = None) -> FastAPI:
    app = FastAPI(
        title="Loudou API",
        version=__version__,
        description="REST API of Loudou (漏斗), the self-hosted sales-funnel CRM. Authenticate with "
        "`Authorization: Bearer <token>` (create one with `loudou token create --email …`). Lists "
        "return `{items, next_cursor}`; pass `cursor=next_cursor` for the next page. Updates carry "
        "the `version` read: a stale one answers 409.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.db = db or get_database()
    app.state.session_codec = SessionCodec(get_settings().secret_key)
    app.state.login_throttle = LoginThrottle()
    errors.install(app)
    for router in (*API_ROUTERS, *PAGE_ROUTERS):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/health", include_in_schema=False)
    async def health() -> OrjsonResponse:
        return OrjsonResponse({"status": "ok"})

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/board", status_code=303)

    return app
