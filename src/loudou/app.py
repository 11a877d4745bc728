"""The ASGI application: composition root of every router."""

from __future__ import annotations

from fastapi import FastAPI

from loudou import __version__
from loudou.activity import api as activity_api
from loudou.auth import api as auth_api
from loudou.channel import api as channel_api
from loudou.company import api as company_api
from loudou.contact import api as contact_api
from loudou.db import Database, get_database
from loudou.deal import api as deal_api
from loudou.pipeline import api as pipeline_api
from loudou.web import errors
from loudou.web.jsonio import OrjsonResponse


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
    errors.install(app)
    for router in (deal_api.router, company_api.router, contact_api.router, activity_api.activities,
                   activity_api.tasks, pipeline_api.router, auth_api.router, channel_api.router):
        app.include_router(router)

    @app.get("/health", include_in_schema=False)
    async def health() -> OrjsonResponse:
        return OrjsonResponse({"status": "ok"})

    return app
