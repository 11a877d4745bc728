"""Imports every domain's models so ``Base.metadata`` knows all tables (migrations, tests)."""

from loudou.activity.models import Activity, ActivityKind, Task
from loudou.analytics import (
    counters,  # noqa: F401  (counter tables and their upkeep)
    counters_flow,  # noqa: F401
    counters_outcomes,  # noqa: F401
    counters_segments,  # noqa: F401
    counters_value,  # noqa: F401
)
from loudou.audit.models import AuditLog
from loudou.auth.models import ApiToken, Role, Team, User
from loudou.channel.models import Channel, ChannelSpend
from loudou.company.models import Company
from loudou.contact.models import Contact
from loudou.db import Base
from loudou.deal.models import Deal, DealStatus, StageTransition, TransitionKind
from loudou.pipeline.models import LostReason, Pipeline, Stage
from loudou.product.models import Product
from loudou.search.models import SearchTerm

__all__ = [
    "Activity", "ActivityKind", "ApiToken", "AuditLog", "Base", "Channel", "ChannelSpend",
    "Company", "Contact", "Deal", "DealStatus", "LostReason", "Pipeline", "Product", "Role", "SearchTerm", "Stage",
    "StageTransition", "Task", "Team", "TransitionKind", "User",
]
