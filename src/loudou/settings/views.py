"""``/settings``: the admin's pages for reference data and people (PRODUCT.md A1-A2, C9,
E1, F3). Admin only: ``AdminPage`` answers everyone else with the 403 page, and the
services check again (``policy.ensure_admin``), so the API and the CLI share the rule.

One router per area, gathered here (app.py registers this one): pipelines and stages,
lost reasons and channels (reference data), users, teams and API tokens (people)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from loudou.settings import people, pipelines, reference
from loudou.web.pages import AdminPage

router = APIRouter(include_in_schema=False)


@router.get("/settings", name="settings")
def settings_home(page: AdminPage) -> RedirectResponse:
    return RedirectResponse("/settings/pipelines", status_code=303)


router.include_router(pipelines.router)
router.include_router(reference.router)
router.include_router(people.router)
