"""Business errors. Each carries the HTTP status the web layer answers with."""

from __future__ import annotations

from typing import Any


class LoudouError(Exception):
    status_code = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "detail": self.detail, **self.extra}


class NotFound(LoudouError):
    """Unknown id, or an id the viewer may not see (no existence leak)."""

    status_code = 404


class PermissionDenied(LoudouError):
    """The viewer may see the record but not change it."""

    status_code = 403


class Conflict(LoudouError):
    """A stale version or a state that forbids the action (e.g. moving a won deal)."""

    status_code = 409


class ValidationFailed(LoudouError):
    """Bad input; ``field`` names what is wrong so forms and clients can point at it."""

    status_code = 422

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail, field=field, **extra)
        self.field = field


class MissingForStage(ValidationFailed):
    """Entering a stage needs fields or checklist items that the deal lacks."""

    def __init__(self, stage_name: str, missing_fields: list[str], missing_checklist: list[str]) -> None:
        parts = []
        if missing_fields:
            parts.append("required fields: " + ", ".join(missing_fields))
        if missing_checklist:
            parts.append("checklist items: " + ", ".join(missing_checklist))
        super().__init__(
            f"Cannot enter stage '{stage_name}': missing " + "; ".join(parts),
            field=missing_fields[0] if missing_fields else "checklist",
            missing_fields=missing_fields,
            missing_checklist=missing_checklist,
        )
