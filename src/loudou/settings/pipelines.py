"""Settings › pipelines and stages (PRODUCT.md A1, A2, D1, E6): create and edit pipelines,
add, edit, reorder and retire their stages. Every change goes through pipeline.service
(admin check, versions, audit log)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.orm import Session

from loudou.errors import NotFound, ValidationFailed
from loudou.pipeline import defaults
from loudou.pipeline import queries as pipeline_queries
from loudou.pipeline import service as pipeline_service
from loudou.pipeline.models import Pipeline, Stage
from loudou.pipeline.schemas import REQUIRABLE_FIELDS, PipelineCreate, PipelineUpdate, StageCreate, StageUpdate
from loudou.settings import queries as sq
from loudou.settings.forms import (
    Form,
    FormRefused,
    FormState,
    attempt,
    checked,
    optional_text,
    redirect,
    refuse,
    show,
    text,
    validated,
    viewer,
)
from loudou.web.deps import DbSession
from loudou.web.pages import AdminPage
from loudou.web.templating import Page, is_htmx, render

router = APIRouter(include_in_schema=False)

STAGE_FIELDS = ("name", "name_en", "probability", "expected_days", "follow_up_days", "main_task", "key_points",
                "playbook")


def requirable_labels(page: Page) -> dict[str, str]:
    return {"amount": page.gettext("Amount"), "expected_close_date": page.gettext("Expected close date"),
            "company_id": page.gettext("Company"), "contact_id": page.gettext("Contact"),
            "channel_id": page.gettext("Channel"), "description": page.gettext("Description")}


def _labels(page: Page) -> dict[str, str]:
    return {
        "name": page.gettext("Name"), "name_en": page.gettext("English name"),
        "is_relaxed": page.gettext("Relaxed"), "is_default": page.gettext("Default pipeline"),
        "probability": page.gettext("Win probability"), "expected_days": page.gettext("Expected days"),
        "follow_up_days": page.gettext("Follow-up every"), "main_task": page.gettext("Main task"),
        "key_points": page.gettext("Key points"), "playbook": page.gettext("Playbook"),
        "checklist": page.gettext("Entry checklist"), "required_fields": page.gettext("Required fields"),
        "stage_ids": page.gettext("Stage order"), "stages": page.gettext("Stages"),
    }


def _pipeline_or_404(session: Session, pipeline_id: int) -> Pipeline:
    pipeline = pipeline_queries.get_pipeline(session, pipeline_id)
    if pipeline is None:
        raise NotFound(f"pipeline {pipeline_id} not found")
    return pipeline


def _stage_or_404(session: Session, pipeline_id: int, stage_id: int) -> Stage:
    stage = pipeline_queries.get_stage(session, stage_id)
    if stage is None or stage.pipeline_id != pipeline_id or not stage.is_active:
        raise NotFound(f"stage {stage_id} not found")
    return stage


# --------------------------------------------------------------------------- pages


def _list_page(page: Page, session: Session, state: FormState | None = None, status_code: int = 200) -> Response:
    return show(page, "settings/pipelines.html", {"summaries": sq.pipeline_summaries(session),
                                                  "state": state or FormState()},
                section="pipelines", status_code=status_code)


def _pipeline_values(page: Page, session: Session, pipeline: Pipeline, state: FormState | None) -> dict[str, Any]:
    stages = pipeline_queries.list_stages(session, pipeline.id)
    return {
        "pipeline": pipeline,
        "stages": stages,
        "open_deals": sq.open_deals_by_stage(session, [s.id for s in stages]),
        "retired": sq.retired_stages(session, pipeline.id),
        "requirable": requirable_labels(page),
        "state": state or FormState(),
    }


def _pipeline_page(page: Page, session: Session, pipeline: Pipeline, state: FormState | None = None,
                   status_code: int = 200) -> Response:
    return show(page, "settings/pipeline.html", _pipeline_values(page, session, pipeline, state),
                section="pipelines", status_code=status_code)


def _stages_block(page: Page, session: Session, pipeline: Pipeline, state: FormState | None = None,
                  status_code: int = 200) -> Response:
    """HTMX answers of the reorder controls: the stages panel, fresh from the database."""
    return render(page, "settings/pipeline.html", _pipeline_values(page, session, pipeline, state),
                  block="stages", status_code=status_code)


def _stage_page(page: Page, session: Session, pipeline: Pipeline, stage: Stage, state: FormState | None = None,
                status_code: int = 200) -> Response:
    return show(page, "settings/stage.html", {
        "pipeline": pipeline, "stage": stage, "requirable": requirable_labels(page),
        "open_deals": sq.open_deals_by_stage(session, [stage.id]).get(stage.id, 0), "state": state or FormState(),
    }, section="pipelines", status_code=status_code)


@router.get("/settings/pipelines", name="settings_pipelines")
def pipelines(page: AdminPage, session: DbSession) -> Response:
    return _list_page(page, session)


@router.post("/settings/pipelines", name="settings_pipeline_create")
def create_pipeline(page: AdminPage, session: DbSession, form: Form) -> Response:
    labels = _labels(page)
    stages = [StageCreate(**s) for s in defaults.DEFAULT_STAGES] if checked(form, "with_default_stages") else []
    try:
        data = validated(page, "create", PipelineCreate, {
            "name": text(form, "name"), "name_en": optional_text(form, "name_en"),
            "is_relaxed": checked(form, "is_relaxed"), "is_default": checked(form, "is_default"),
            "stages": stages,
        }, form, labels)
        pipeline = attempt(session, page, "create", form, labels,
                           lambda: pipeline_service.create_pipeline(session, viewer(page), data))
    except FormRefused as refused:
        return _list_page(page, session, refused.state, refused.status_code)
    return redirect(page, f"/settings/pipelines/{pipeline.id}?saved=pipeline")


@router.get("/settings/pipelines/{pipeline_id:int}", name="settings_pipeline")
def pipeline_page(page: AdminPage, session: DbSession, pipeline_id: int) -> Response:
    return _pipeline_page(page, session, _pipeline_or_404(session, pipeline_id))


@router.post("/settings/pipelines/{pipeline_id:int}", name="settings_pipeline_update")
def update_pipeline(page: AdminPage, session: DbSession, form: Form, pipeline_id: int) -> Response:
    pipeline = _pipeline_or_404(session, pipeline_id)
    labels = _labels(page)
    values: dict[str, Any] = {"version": text(form, "version"), "name": text(form, "name"),
                              "name_en": optional_text(form, "name_en"), "is_relaxed": checked(form, "is_relaxed")}
    # Default is chosen, never unchosen: another pipeline becomes default instead, so
    # there is always exactly one for new deals.
    if checked(form, "is_default"):
        values["is_default"] = True
    try:
        data = validated(page, "pipeline", PipelineUpdate, values, form, labels)
        attempt(session, page, "pipeline", form, labels,
                lambda: pipeline_service.update_pipeline(session, viewer(page), pipeline_id, data))
    except FormRefused as refused:
        return _pipeline_page(page, session, _pipeline_or_404(session, pipeline_id), refused.state,
                              refused.status_code)
    return redirect(page, f"/settings/pipelines/{pipeline.id}?saved=pipeline")


@router.post("/settings/pipelines/{pipeline_id:int}/stages", name="settings_stage_create")
def add_stage(page: AdminPage, session: DbSession, form: Form, pipeline_id: int) -> Response:
    pipeline = _pipeline_or_404(session, pipeline_id)
    labels = _labels(page)
    try:
        data = validated(page, "add-stage", StageCreate, {
            "name": text(form, "name"), "name_en": optional_text(form, "name_en"),
            "probability": text(form, "probability") or "10", "expected_days": text(form, "expected_days") or "14",
            "follow_up_days": text(form, "follow_up_days") or "7",
        }, form, labels)
        attempt(session, page, "add-stage", form, labels,
                lambda: pipeline_service.add_stage(session, viewer(page), pipeline_id, data))
    except FormRefused as refused:
        return _pipeline_page(page, session, _pipeline_or_404(session, pipeline_id), refused.state,
                              refused.status_code)
    return redirect(page, f"/settings/pipelines/{pipeline.id}?saved=stage-added#stages")


def _reorder(page: Page, session: Session, pipeline: Pipeline, stage_ids: list[int]) -> Response:
    """Save an order; HTMX gets the stages panel back (the order as saved), a browser a 303.
    Refused (another admin added or retired a stage meanwhile): the panel as it is now."""
    try:
        pipeline_service.reorder_stages(session, viewer(page), pipeline.id, stage_ids)
    except ValidationFailed:
        session.rollback()
        state = FormState("order", alert=page.gettext(
            "The stages changed while you were sorting them (another admin added or retired one). "
            "This is the current order; sort again."))
        if is_htmx(page.request):
            return _stages_block(page, session, pipeline, state, 409)
        return _pipeline_page(page, session, pipeline, state, 409)
    if is_htmx(page.request):
        session.flush()
        return _stages_block(page, session, pipeline, FormState("order", alert=None))
    return redirect(page, f"/settings/pipelines/{pipeline.id}?saved=order#stages")


@router.post("/settings/pipelines/{pipeline_id:int}/stages/order", name="settings_stage_order")
def order_stages(page: AdminPage, session: DbSession, form: Form, pipeline_id: int) -> Response:
    """The drag-and-drop list posts every stage id in its new order."""
    pipeline = _pipeline_or_404(session, pipeline_id)
    raw = [v for v in form.getlist("stage_id") if isinstance(v, str)]
    if not all(v.isdigit() for v in raw):
        raise NotFound("unknown stage id")
    return _reorder(page, session, pipeline, [int(v) for v in raw])


@router.post("/settings/pipelines/{pipeline_id:int}/stages/{stage_id:int}/move", name="settings_stage_move")
def move_stage(page: AdminPage, session: DbSession, form: Form, pipeline_id: int, stage_id: int) -> Response:
    """Up/down buttons: the keyboard's and the phone's way to reorder."""
    pipeline = _pipeline_or_404(session, pipeline_id)
    _stage_or_404(session, pipeline_id, stage_id)
    order = [s.id for s in pipeline_queries.list_stages(session, pipeline_id)]
    i = order.index(stage_id)
    j = i - 1 if text(form, "direction") == "up" else i + 1
    if 0 <= j < len(order):
        order[i], order[j] = order[j], order[i]
    return _reorder(page, session, pipeline, order)


@router.get("/settings/pipelines/{pipeline_id:int}/stages/{stage_id:int}", name="settings_stage")
def stage_page(page: AdminPage, session: DbSession, pipeline_id: int, stage_id: int) -> Response:
    pipeline = _pipeline_or_404(session, pipeline_id)
    return _stage_page(page, session, pipeline, _stage_or_404(session, pipeline_id, stage_id))


def _lines(raw: str) -> list[str]:
    return [line.strip() for line in raw.splitlines() if line.strip()]


@router.post("/settings/pipelines/{pipeline_id:int}/stages/{stage_id:int}", name="settings_stage_update")
def update_stage(page: AdminPage, session: DbSession, form: Form, pipeline_id: int, stage_id: int) -> Response:
    pipeline = _pipeline_or_404(session, pipeline_id)
    _stage_or_404(session, pipeline_id, stage_id)
    labels = _labels(page)
    values: dict[str, Any] = {name: text(form, name) for name in STAGE_FIELDS}
    values["name_en"] = values["name_en"] or None
    # Long texts keep their line breaks; only their ends are trimmed.
    for name in ("main_task", "key_points", "playbook"):
        raw = form.get(name)
        values[name] = raw.strip() if isinstance(raw, str) else ""
    checklist = form.get("checklist")
    values.update(version=text(form, "version"), checklist=_lines(checklist if isinstance(checklist, str) else ""),
                  required_fields=[v for v in form.getlist("required_fields") if v in REQUIRABLE_FIELDS])
    try:
        data = validated(page, "stage", StageUpdate, values, form, labels)
        attempt(session, page, "stage", form, labels,
                lambda: pipeline_service.update_stage(session, viewer(page), stage_id, data))
    except FormRefused as refused:
        return _stage_page(page, session, pipeline, _stage_or_404(session, pipeline_id, stage_id), refused.state,
                           refused.status_code)
    return redirect(page, f"/settings/pipelines/{pipeline.id}?saved=stage#stages")


@router.post("/settings/pipelines/{pipeline_id:int}/stages/{stage_id:int}/retire", name="settings_stage_retire")
def retire_stage(page: AdminPage, session: DbSession, form: Form, pipeline_id: int, stage_id: int) -> Response:
    """Refused while the stage holds open deals: they would have no stage on the board."""
    pipeline = _pipeline_or_404(session, pipeline_id)
    stage = _stage_or_404(session, pipeline_id, stage_id)
    labels = _labels(page)
    n_open = sq.open_deals_by_stage(session, [stage.id]).get(stage.id, 0)
    try:
        if n_open:
            raise refuse(page, "retire", form, "stage", page.ngettext(
                "%(stage)s still holds %(num)s open deal. Move it to another stage (or close it) first; "
                "then retire the stage.",
                "%(stage)s still holds %(num)s open deals. Move them to other stages (or close them) first; "
                "then retire the stage.", n_open, stage=page.name_of(stage)), labels, 409)
        attempt(session, page, "retire", form, labels,
                lambda: pipeline_service.deactivate_stage(session, viewer(page), stage_id))
    except FormRefused as refused:
        refused.state.alert = refused.state.errors.get("stage") or refused.state.alert
        return _pipeline_page(page, session, pipeline, refused.state, refused.status_code)
    return redirect(page, f"/settings/pipelines/{pipeline.id}?saved=stage-retired#stages")
