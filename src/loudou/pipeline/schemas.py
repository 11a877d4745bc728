from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from loudou.inputs import InputModel

#: Deal fields a stage may require before a deal enters it.
REQUIRABLE_FIELDS = (
    "amount", "expected_close_date", "company_id", "contact_id", "channel_id", "description",
)



def _check_requirable(value: list[str]) -> list[str]:
    unknown = [f for f in value if f not in REQUIRABLE_FIELDS]
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; allowed: {list(REQUIRABLE_FIELDS)}")
    return value


class StageBase(InputModel):
    model_config = ConfigDict(extra="forbid")

    name_en: str | None = Field(default=None, max_length=120)
    probability: int = Field(default=10, ge=0, le=100)
    expected_days: int = Field(default=14, ge=1, le=3650)
    follow_up_days: int = Field(default=7, ge=1, le=365)
    main_task: str = ""
    key_points: str = ""
    playbook: str = ""
    checklist: list[str] = Field(default_factory=list)
    required_fields: list[str] = Field(default_factory=list)

    @field_validator("required_fields")
    @classmethod
    def _known_fields(cls, value: list[str]) -> list[str]:
        return _check_requirable(value)


class StageCreate(StageBase):
    name: str = Field(min_length=1, max_length=120)
    position: int | None = Field(default=None, ge=0)


class StageUpdate(InputModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    name: str | None = Field(default=None, min_length=1, max_length=120)
    name_en: str | None = Field(default=None, max_length=120)
    probability: int | None = Field(default=None, ge=0, le=100)
    expected_days: int | None = Field(default=None, ge=1, le=3650)
    follow_up_days: int | None = Field(default=None, ge=1, le=365)
    main_task: str | None = None
    key_points: str | None = None
    playbook: str | None = None
    checklist: list[str] | None = None
    required_fields: list[str] | None = None
    position: int | None = Field(default=None, ge=0)

    @field_validator("required_fields")
    @classmethod
    def _known_fields(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _check_requirable(value)


class PipelineCreate(InputModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    name_en: str | None = Field(default=None, max_length=120)
    is_relaxed: bool = False
    is_default: bool = False
    stages: list[StageCreate] = Field(default_factory=list)


class PipelineUpdate(InputModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    name: str | None = Field(default=None, min_length=1, max_length=120)
    name_en: str | None = Field(default=None, max_length=120)
    is_relaxed: bool | None = None
    is_default: bool | None = None


class StageRead(InputModel):
    id: int
    pipeline_id: int
    position: int
    name: str
    name_en: str | None
    probability: int
    expected_days: int
    follow_up_days: int
    main_task: str
    key_points: str
    playbook: str
    checklist: list[str]
    required_fields: list[str]
    is_active: bool
    version: int


class PipelineRead(InputModel):
    id: int
    name: str
    name_en: str | None
    is_default: bool
    is_relaxed: bool
    version: int
    stages: list[StageRead]


class LostReasonRead(InputModel):
    id: int
    name: str
    name_en: str | None
    kind: str
    is_active: bool
