from __future__ import annotations

from loudou.activity import service as activity_service
from loudou.activity.models import Activity, Task
from loudou.activity.schemas import (
    ActivityCreate,
    ActivityFilters,
    ActivityRead,
    ActivityUpdate,
    TaskCreate,
    TaskFilters,
    TaskRead,
    TaskUpdate,
)
from loudou.listing import ListSpec
from loudou.web.crud import owned_router

activities = owned_router(
    prefix="/api/v1/activities", entity="activity", model=Activity, read_schema=ActivityRead,
    filters_schema=ActivityFilters, create_schema=ActivityCreate, update_schema=ActivityUpdate,
    create=activity_service.log_activity, update=activity_service.update_activity,
    delete=activity_service.delete_activity,
    spec=ListSpec(model=Activity, sortable=("id", "occurred_at", "created_at"),
                  date_ranges={"occurred_at": ("occurred_from", "occurred_to")}),
)

tasks = owned_router(
    prefix="/api/v1/tasks", entity="task", model=Task, read_schema=TaskRead,
    filters_schema=TaskFilters, create_schema=TaskCreate, update_schema=TaskUpdate,
    create=activity_service.create_task, update=activity_service.update_task,
    delete=activity_service.delete_task,
    spec=ListSpec(model=Task, sortable=("id", "due_at", "created_at", "priority"),
                  date_ranges={"due_at": ("due_from", "due_to")},
                  custom={"done": lambda done: Task.done_at.is_not(None) if done else Task.done_at.is_(None)}),
)
