"""Load Maven Analytics' "CRM Sales Opportunities" sample (8,800 real-format deals) into
Loudou through the services, with each change at its historical time (``at``).

The data set lives beside the repository, in ``shared/datasets/maven-crm`` of the
repository's parent directory (its SOURCE.md tells where it came from, its quirks and the
reference values). How it maps onto Loudou is in docs/analytics/maven.md:

* one relaxed pipeline "Maven" with the open stages Prospecting and Engaging (Won and
  Lost are deal statuses);
* a team per manager (named after the manager, region = the regional office), the
  managers as users with the manager role, the agents as reps in their manager's team;
* companies from accounts.csv (industry = sector, the ``technolgy`` typo kept as data);
* products from products.csv; the pipeline's ``GTXPro`` is matched to ``GTX Pro`` by
  comparing names without spaces and case;
* deals, owned by their agent, titled with the opportunity id: Prospecting rows are
  created on ``PROSPECTING_CREATED`` (they have no engage date) and stay there; every
  other row is created on its engage_date and moved to Engaging at that same time;
  Engaging rows stay open; Won rows are won on close_date with the amount close_value;
  Lost rows are lost on close_date with the reason "Unknown (imported)" and no amount
  (the file's close_value of 0 is not a deal size). All times are 00:00 UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from loudou.auth import service as auth_service
from loudou.auth.models import Role, Team, User
from loudou.auth.schemas import TeamCreate, UserCreate
from loudou.company import service as company_service
from loudou.company.schemas import CompanyCreate
from loudou.db import Database
from loudou.deal import service as deal_service
from loudou.deal.schemas import DealClose, DealCreate, DealMove
from loudou.pipeline import queries as pipeline_queries
from loudou.pipeline import service as pipeline_service
from loudou.pipeline.schemas import PipelineCreate, StageCreate
from loudou.product.models import Product


def _find_dataset() -> Path:
    """``$LOUDOU_DATASETS_DIR/maven-crm``, else ``shared/datasets/maven-crm`` in the nearest
    folder above the repository that has one (the team keeps shared/ beside the checkout)."""
    configured = os.environ.get("LOUDOU_DATASETS_DIR")
    if configured:
        return Path(configured) / "maven-crm"
    here = Path(__file__).resolve()
    for parent in here.parents[2:]:
        candidate = parent / "shared" / "datasets" / "maven-crm"
        if candidate.is_dir():
            return candidate
    return here.parents[3] / "shared" / "datasets" / "maven-crm"


DATASET_DIR = _find_dataset()
FILES = ("sales_pipeline.csv", "accounts.csv", "products.csv", "sales_teams.csv")

#: Prospecting rows carry no date at all; they are created on the data set's last day.
PROSPECTING_CREATED = dt.datetime(2017, 12, 31, tzinfo=dt.UTC)
LOST_REASON = "Unknown (imported)"
PASSWORD = "maven-import-password"
EMAIL_DOMAIN = "maven.example.com"


class DatasetMissing(Exception):
    """The Maven CRM files are not where the tests expect them."""


def dataset_dir() -> Path:
    missing = [name for name in FILES if not (DATASET_DIR / name).is_file()]
    if missing:
        raise DatasetMissing(
            f"the Maven CRM data set is missing: expected {', '.join(missing)} in {DATASET_DIR} "
            "(shared/datasets/maven-crm beside the repository, or set LOUDOU_DATASETS_DIR; see its SOURCE.md)")
    return DATASET_DIR


def read_csv(name: str) -> list[dict[str, str]]:
    with (dataset_dir() / name).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def product_key(name: str) -> str:
    """Names compared without spaces and case: the pipeline's GTXPro is products.csv's GTX Pro."""
    return "".join(name.split()).lower()


def email_for(name: str) -> str:
    return ".".join(name.lower().split()) + "@" + EMAIL_DOMAIN


def day(text: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), tzinfo=dt.UTC)


@dataclass
class Maven:
    """What was loaded, by the names of the data set."""

    pipeline_id: int
    stage_ids: dict[str, int]
    admin: User
    users: dict[str, User] = field(default_factory=dict)      # agents and managers by name
    teams: dict[str, Team] = field(default_factory=dict)      # by manager
    products: dict[str, int] = field(default_factory=dict)    # by products.csv name
    companies: dict[str, int] = field(default_factory=dict)   # by account
    lost_reason_id: int = 0
    deals: int = 0


def load(db: Database) -> Maven:
    """Write the whole data set in one transaction; return the ids by name."""
    pipeline_rows = read_csv("sales_pipeline.csv")
    account_rows = read_csv("accounts.csv")
    product_rows = read_csv("products.csv")
    team_rows = read_csv("sales_teams.csv")
    with db.session_scope() as s:
        admin = auth_service.create_user(s, None, UserCreate(
            email=f"importer@{EMAIL_DOMAIN}", name="Maven importer", role=Role.admin, password=PASSWORD))
        pipeline = pipeline_service.create_pipeline(s, admin, PipelineCreate(
            name="Maven", name_en="Maven", is_relaxed=True,
            stages=[StageCreate(name="Prospecting", name_en="Prospecting"),
                    StageCreate(name="Engaging", name_en="Engaging")]))
        stage_rows = pipeline_queries.list_stages(s, pipeline.id)
        stages = {st.name: st.id for st in stage_rows}
        maven = Maven(pipeline_id=pipeline.id, stage_ids=stages, admin=admin)
        # Strong references keep the reference rows in the session's identity map, so the
        # services' look-ups of them (owner, company, product, stage) need no query.
        kept: list[object] = [pipeline, *stage_rows]
        reason = pipeline_service.create_lost_reason(s, admin, name=LOST_REASON, name_en=LOST_REASON,
                                                     kind="lost", source="import")
        kept.append(reason)
        maven.lost_reason_id = reason.id

        for row in team_rows:
            manager = row["manager"]
            if manager not in maven.teams:
                team = auth_service.create_team(s, admin, TeamCreate(name=manager))
                team.region = row["regional_office"]
                maven.teams[manager] = team
                maven.users[manager] = auth_service.create_user(s, admin, UserCreate(
                    email=email_for(manager), name=manager, role=Role.manager, team_id=team.id,
                    password=PASSWORD), source="import")
        for row in team_rows:
            maven.users[row["sales_agent"]] = auth_service.create_user(s, admin, UserCreate(
                email=email_for(row["sales_agent"]), name=row["sales_agent"], role=Role.rep,
                team_id=maven.teams[row["manager"]].id, password=PASSWORD), source="import")

        for row in account_rows:
            company = company_service.create_company(s, admin, CompanyCreate(
                name=row["account"], industry=row["sector"]), source="import")
            maven.companies[row["account"]] = company.id
            kept.append(company)

        by_key: dict[str, int] = {}
        for row in product_rows:
            product = Product(name=row["product"], series=row["series"], list_price=Decimal(row["sales_price"]),
                              is_active=True)
            s.add(product)
            s.flush()
            maven.products[row["product"]] = product.id
            kept.append(product)
            by_key[product_key(row["product"])] = product.id

        prospecting, engaging = stages["Prospecting"], stages["Engaging"]
        for row in pipeline_rows:
            agent = maven.users[row["sales_agent"]]
            stage = row["deal_stage"]
            created = PROSPECTING_CREATED if stage == "Prospecting" else day(row["engage_date"])
            deal = deal_service.create_deal(s, admin, DealCreate(
                title=row["opportunity_id"], pipeline_id=pipeline.id, stage_id=prospecting, owner_id=agent.id,
                company_id=maven.companies[row["account"]] if row["account"] else None,
                product_id=by_key[product_key(row["product"])]), source="import", at=created)
            if stage != "Prospecting":
                deal = deal_service.move_deal(s, admin, deal.id, DealMove(stage_id=engaging, version=deal.version),
                                              source="import", at=created)
            if stage == "Won":
                deal_service.win_deal(s, admin, deal.id, DealClose(
                    version=deal.version, amount=Decimal(row["close_value"])), source="import",
                    at=day(row["close_date"]))
            elif stage == "Lost":
                deal_service.lose_deal(s, admin, deal.id, DealClose(
                    version=deal.version, lost_reason_id=reason.id), source="import", at=day(row["close_date"]))
            elif stage not in ("Prospecting", "Engaging"):
                raise ValueError(f"{row['opportunity_id']}: unknown deal_stage {stage!r}")
            maven.deals += 1
    return maven
