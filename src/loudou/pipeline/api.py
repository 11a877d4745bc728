"""Pipelines, their stages and lost reasons: readable by everyone, changed by admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from loudou.errors import NotFound
from loudou.pipeline import queries as pipeline_queries
from loudou.pipeline import service as pipeline_service
from loudou.pipeline.schemas import (
    LostReasonRead,
    PipelineCreate,
    PipelineRead,
    PipelineUpdate,
    StageCreate,
    StageRead,
    StageUpdate,
)
from loudou.web.deps import CurrentUser, DbSession
from loudou.web.jsonio import OrjsonResponse, one

router = APIRouter(prefix="/api/v1", tags=["pipelines"])
PIPELINE_FIELDS = tuple(PipelineRead.model_fields)
STAGE_FIELDS = tuple(StageRead.model_fields)


def _pipeline_json(session: DbSession, pipeline_id: int) -> dict[str, object]:
    pipeline = pipeline_queries.get_pipeline(session, pipeline_id)
    if pipeline is None:
        raise NotFound(f"pipeline {pipeline_id} not found")
    data: dict[str, object] = {f: getattr(pipeline, f) for f in PIPELINE_FIELDS if f != "stages"}
    data["stages"] = [{f: getattr(s, f) for f in STAGE_FIELDS}
                      for s in pipeline_queries.list_stages(session, pipeline.id)]
    return data


@router.get("/pipelines", response_model=list[PipelineRead], name="pipeline_list")
def list_pipelines(session: DbSession, viewer: CurrentUser) -> OrjsonResponse:
    return OrjsonResponse([_pipeline_json(session, p.id) for p in pipeline_queries.list_pipelines(session)])


@router.post("/pipelines", response_model=PipelineRead, status_code=201, name="pipeline_create")
def create_pipeline(session: DbSession, viewer: CurrentUser, data: PipelineCreate) -> OrjsonResponse:
    pipeline = pipeline_service.create_pipeline(session, viewer, data)
    return OrjsonResponse(_pipeline_json(session, pipeline.id), status_code=201)


@router.get("/pipelines/{pipeline_id}", response_model=PipelineRead, name="pipeline_get")
def get_pipeline(session: DbSession, viewer: CurrentUser, pipeline_id: int) -> OrjsonResponse:
    return OrjsonResponse(_pipeline_json(session, pipeline_id))


@router.patch("/pipelines/{pipeline_id}", response_model=PipelineRead, name="pipeline_update")
def update_pipeline(session: DbSession, viewer: CurrentUser, pipeline_id: int,
                    data: PipelineUpdate) -> OrjsonResponse:
    pipeline_service.update_pipeline(session, viewer, pipeline_id, data)
    return OrjsonResponse(_pipeline_json(session, pipeline_id))


@router.get("/pipelines/{pipeline_id}/stages", response_model=list[StageRead], name="stage_list")
def list_stages(session: DbSession, viewer: CurrentUser, pipeline_id: int) -> OrjsonResponse:
    if pipeline_queries.get_pipeline(session, pipeline_id) is None:
        raise NotFound(f"pipeline {pipeline_id} not found")
    return OrjsonResponse([{f: getattr(s, f) for f in STAGE_FIELDS}
                           for s in pipeline_queries.list_stages(session, pipeline_id)])


@router.post("/pipelines/{pipeline_id}/stages", response_model=StageRead, status_code=201, name="stage_create")
def add_stage(session: DbSession, viewer: CurrentUser, pipeline_id: int, data: StageCreate) -> OrjsonResponse:
    return one(pipeline_service.add_stage(session, viewer, pipeline_id, data), STAGE_FIELDS, 201)


class StageOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage_ids: list[int]


@router.post("/pipelines/{pipeline_id}/stages/reorder", response_model=list[StageRead], name="stage_reorder")
def reorder_stages(session: DbSession, viewer: CurrentUser, pipeline_id: int, data: StageOrder) -> OrjsonResponse:
    stages = pipeline_service.reorder_stages(session, viewer, pipeline_id, data.stage_ids)
    return OrjsonResponse([{f: getattr(s, f) for f in STAGE_FIELDS} for s in stages])


@router.get("/stages/{stage_id}", response_model=StageRead, name="stage_get")
def get_stage(session: DbSession, viewer: CurrentUser, stage_id: int) -> OrjsonResponse:
    stage = pipeline_queries.get_stage(session, stage_id)
    if stage is None:
        raise NotFound(f"stage {stage_id} not found")
    return one(stage, STAGE_FIELDS)


@router.patch("/stages/{stage_id}", response_model=StageRead, name="stage_update")
def update_stage(session: DbSession, viewer: CurrentUser, stage_id: int, data: StageUpdate) -> OrjsonResponse:
    return one(pipeline_service.update_stage(session, viewer, stage_id, data), STAGE_FIELDS)


@router.delete("/stages/{stage_id}", status_code=204, name="stage_delete")
def delete_stage(session: DbSession, viewer: CurrentUser, stage_id: int) -> None:
    """Retire a stage (it stays in the history). Refused while it holds open deals."""
    pipeline_service.deactivate_stage(session, viewer, stage_id)


@router.get("/lost-reasons", response_model=list[LostReasonRead], name="lost_reason_list")
def list_lost_reasons(session: DbSession, viewer: CurrentUser,
                      kind: Annotated[str | None, Query(pattern="^(lost|disqualify)$")] = None) -> OrjsonResponse:
    return OrjsonResponse([{f: getattr(r, f) for f in LostReasonRead.model_fields}
                           for r in pipeline_queries.list_lost_reasons(session, kind)])
