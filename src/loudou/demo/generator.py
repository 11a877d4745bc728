"""Pure, vectorised generation of a demo company: people, customers, deals, history.

``DemoPlan(deals, seed, locale, reference, now=…)`` draws the company's *core* (people,
parameters, every deal's path through the funnel, its customer, how many activities it
gets) and then builds each table as column arrays (``TableData``) on demand; it never
touches the database (``writer.py`` does). Same arguments, same rows: every part draws
from its own stream ``numpy.random.default_rng([seed, stream, …])``, so a table is the
same whichever other tables are built, in whatever process, and activities are drawn in
fixed blocks of deals so that two processes can each build a share of them. The only
clock is ``now`` (the CLI passes the current time floored to the hour). Every demo user
signs in with the password ``loudou-demo`` (``DEMO_PASSWORD``); the admin is
``admin@loudou.demo``.

The funnel simulation
---------------------
Deals are created over the ``WINDOW_DAYS`` (730) days before ``now`` (growing volume,
business hours, quiet weekends), all in the first stage (position 0) of the default
pipeline. Each deal has a channel and an owner (a rep) drawn independently: channel by
channel share, rep by rep weight. Then, stage by stage (vectorised over all deals at
that stage), a deal that *entered* stage k:

1. stays a time drawn from lognormal(mu_k, sigma_k) (seconds; clipped to
   [``min_days``, ``max_days``]); every open stay of stage k, whatever follows it, is
   such a draw;
2. *continues* with probability ``rate[channel, rep, k]``; otherwise it *exits*:
   disqualified (share ``exit_mix[k].disqualified``), stalled (stays open in stage k
   for good, no further transition) or lost (the rest). Lost and disqualified deals carry
   a reason of kind 'lost' / 'disqualify';
3. a continuing deal moves to k+1 at the end of its stay; with probability
   ``skip_probability`` (only where k+2 exists) it jumps to k+2 instead, so stage k+1
   is *not* reached; from the last stage, continuing means *won*;
4. with probability ``reopen_probability`` (at most once per deal) a continuing deal
   first goes through a lose-and-reopen episode: it is lost at the end of its stay,
   reopened into stage k after a lognormal gap (``reopen_gap``), stays again (a second
   draw of step 1) and only then continues. Reopening is thus part of continuing: it
   never changes which stages a deal reaches.

Anything that would happen after ``now`` does not happen: the deal stays in its current
state (open in its stage, or lost awaiting its reopening). Every deal created at least
``decided_after_days`` days before ``now`` has had all its decisions made (stays and gaps
are capped), so such cohorts are free of censoring.

How to recover the continuation rates from the database
--------------------------------------------------------
For stage k with bit b_k (``stages[k].bit``) and a set of deals (a cohort created at
least ``decided_after_days`` before ``now``, optionally one channel or one owner):

* reached_k   = number of deals with ``reached_mask & (1 << b_k) != 0``
* continued_k = number of those that also have the bit of a later stage set
  (``reached_mask & later_bits_k != 0``) or, for the last stage, ``status = 'won'``
* continuation_k ≈ continued_k / reached_k

The expected value of that ratio is exactly ``channels[i].continuation[k]`` for a
channel cohort, ``reps[j].continuation[k]`` for an owner cohort, and
``overall_continuation[k]`` for all deals: these follow from ``rates`` by the same
Markov chain (reach probabilities with skips, weighted by channel share × rep weight),
so they are not the base rates but what a cohort really shows. Stalled deals count as
not continuing; deals that skipped stage k are not in reached_k.

The truth file (``--truth truth.json``), version 1::

    {
      "version": 1, "seed": 42, "deals": 3000, "locale": "zh",
      "now": "2026-11-28T04:00:00+00:00", "window_days": 730, "decided_after_days": 390,
      "skip_probability": 0.03, "reopen_probability": 0.03,
      "stages": [{"position": 0, "stage_id": 1, "bit": 0, "name": "潜在客户", "name_en": "Prospect"}, ...],
      "exit_mix": [{"position": 0, "disqualified": 0.45, "stalled": 0.06, "lost": 0.49}, ...],
      "time_in_stage": [{"position": 0, "distribution": "lognormal", "unit": "seconds",
                         "mu": 12.47, "sigma": 0.8, "median_days": 3.0,
                         "min_days": 0.0069, "max_days": 18.0}, ...],
      "reopen_gap": {"distribution": "lognormal", "unit": "seconds", "mu": 13.31, "sigma": 0.6,
                     "median_days": 7.0, "max_days": 30.0},
      "channels": [{"channel_id": 1, "name": "官网表单", "name_en": "Website form",
                    "share": 0.22, "base_rates": [5 floats], "continuation": [5 floats]}, ...],
      "reps": [{"user_id": 7, "email": "wei.wang@loudou.demo", "name": "王伟", "team": "华东销售部",
                "weight": 0.05, "multipliers": [5 floats], "continuation": [5 floats]}, ...],
      "rates": {"<rep email>": {"<channel_id>": [5 floats]}},
      "weak_pairs": [{"rep_email": "...", "user_id": 9, "stage_position": 2, "stage_id": 3,
                      "multiplier": 0.55}, ...],
      "overall_continuation": [5 floats],
      "counts": {"deals": ..., "transitions": ..., "activities": ..., "tasks": ..., "companies": ...,
                 "contacts": ..., "users": 25, "teams": 4, "channel_spend": ...,
                 "open": ..., "won": ..., "lost": ..., "disqualified": ..., "stalled": ...,
                 "skipped": ..., "reopened": ...}
    }

``rate[channel, rep, k] = clip(base_rates[channel][k] * multipliers[rep][k], 0.02, 0.97)``
and ``rates`` lists every one of them; ``weak_pairs`` are the (rep, stage) bottlenecks put
in on purpose (their multiplier replaces the rep's random one at that stage). Per-stage
lists have one entry per stage position (five for the default pipeline; other pipelines
get the five-stage profiles interpolated).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from loudou.activity.models import ActivityKind
from loudou.auth.models import Role
from loudou.deal.models import DealStatus, TransitionKind
from loudou.demo import names as pools

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DEMO_PASSWORD = "loudou-demo"
DEMO_DOMAIN = "loudou.demo"
ADMIN_EMAIL = f"admin@{DEMO_DOMAIN}"
WINDOW_DAYS = 730
N_TEAMS = 4
REPS_PER_TEAM = 5

US = 1_000_000  # microseconds per second
DAY_US = 86_400 * US
HOUR_US = 3_600 * US
#: NULL marker of time columns (microseconds since the epoch).
NO_TIME = np.iinfo(np.int64).min
#: NULL marker of int, code, date and money columns.
NO_VALUE = -1

SKIP_PROBABILITY = 0.03
REOPEN_PROBABILITY = 0.03
STALL_SHARE = 0.06
WEAK_MULTIPLIER = 0.55
N_WEAK_PAIRS = 4
RATE_MIN, RATE_MAX = 0.02, 0.97
NEW_CUSTOMER_SHARE = 0.33  # of the deals with a company; the rest is repeat business
ACTIVITIES_PER_DEAL = 10.0
#: Activities are drawn per block of this many deals (a unit of work for one process).
ACTIVITY_BLOCK = 1 << 16

# Five-stage profiles; a pipeline with another number of stages gets them interpolated.
STAGE_MEDIAN_DAYS = [3.0, 6.0, 9.0, 12.0, 15.0]
STAGE_SIGMA = [0.8, 0.8, 0.75, 0.75, 0.7]
STAY_MAX_FACTOR = 6.0  # a stay is capped at 6 × its median (above the 98th percentile)
STAY_MIN_DAYS = 600 / 86_400
DISQUALIFY_SHARE = [0.45, 0.30, 0.10, 0.03, 0.02]
REOPEN_GAP_MEDIAN_DAYS, REOPEN_GAP_SIGMA, REOPEN_GAP_MAX_DAYS = 7.0, 0.6, 30.0

# Independent random streams: a table's rows do not depend on which others are built.
STREAMS = {name: i for i, name in enumerate([
    "org", "params", "created", "simulate", "reasons", "customers", "activity_plan", "companies",
    "contacts", "deals", "activities", "tasks", "spend",
], start=1)}


@dataclass(frozen=True)
class ChannelProfile:
    share: float
    rates: tuple[float, ...]
    cost_per_lead: float  # the channel_spend rows follow the generated lead volume


CHANNEL_PROFILES: dict[str, ChannelProfile] = {
    "Website form": ChannelProfile(0.22, (0.62, 0.58, 0.55, 0.60, 0.50), 150),
    "Search ads": ChannelProfile(0.18, (0.55, 0.52, 0.50, 0.58, 0.48), 320),
    "Trade show": ChannelProfile(0.10, (0.70, 0.62, 0.55, 0.60, 0.52), 900),
    "Referral": ChannelProfile(0.10, (0.85, 0.75, 0.68, 0.70, 0.62), 60),
    "Cold call": ChannelProfile(0.14, (0.40, 0.45, 0.48, 0.55, 0.45), 110),
    "WeChat": ChannelProfile(0.12, (0.58, 0.50, 0.50, 0.57, 0.48), 130),
    "Partner": ChannelProfile(0.08, (0.78, 0.70, 0.62, 0.65, 0.58), 220),
    "Email campaign": ChannelProfile(0.06, (0.45, 0.48, 0.50, 0.55, 0.47), 40),
}
OTHER_CHANNEL = ChannelProfile(0.10, (0.60, 0.55, 0.55, 0.60, 0.50), 150)

# Why deals are lost, by stage (early: silence and fit; late: price and competitors).
LOST_REASON_PROFILES: dict[str, tuple[float, ...]] = {
    "Price too high": (0.05, 0.10, 0.20, 0.32, 0.35),
    "Chose a competitor": (0.05, 0.12, 0.20, 0.28, 0.32),
    "No budget": (0.15, 0.20, 0.20, 0.15, 0.12),
    "Not a fit": (0.20, 0.20, 0.18, 0.10, 0.06),
    "Bad timing": (0.15, 0.15, 0.12, 0.10, 0.10),
    "Went silent": (0.40, 0.23, 0.10, 0.05, 0.05),
}
DISQUALIFY_REASON_WEIGHTS: dict[str, float] = {
    "Invalid lead": 0.35, "Duplicate lead": 0.15, "No need": 0.30, "Unreachable": 0.20,
}

ACTIVITY_KINDS = [k.value for k in ActivityKind]  # call, email, meeting, visit, note
# Activity mix by the furthest stage position a deal reached: later deals meet and visit.
ACTIVITY_MIX = [
    (0.45, 0.35, 0.03, 0.02, 0.15),
    (0.40, 0.33, 0.08, 0.04, 0.15),
    (0.32, 0.30, 0.15, 0.08, 0.15),
    (0.28, 0.30, 0.18, 0.10, 0.14),
    (0.25, 0.28, 0.20, 0.13, 0.14),
]
# Activity intensity per open stay, by outcome: won deals were worked hardest.
OUTCOME_ACTIVITY_FACTOR = {DealStatus.open: 1.0, DealStatus.won: 2.0, DealStatus.lost: 1.0,
                           DealStatus.disqualified: 0.5}

STATUSES = [DealStatus.open, DealStatus.won, DealStatus.lost, DealStatus.disqualified]
S_OPEN, S_WON, S_LOST, S_DISQ = range(4)
KINDS = [TransitionKind.create, TransitionKind.move, TransitionKind.win, TransitionKind.lose,
         TransitionKind.disqualify, TransitionKind.reopen]
K_CREATE, K_MOVE, K_WIN, K_LOSE, K_DISQ, K_REOPEN = range(6)

#: Tables in insertion (foreign key) order.
TABLE_ORDER = ("teams", "users", "products", "companies", "contacts", "channel_spend", "deals", "stage_transitions",
               "activities", "tasks")


# --------------------------------------------------------------------------- reference data


@dataclass(frozen=True)
class StageRef:
    id: int
    position: int
    bit: int
    name: str
    name_en: str | None
    required_fields: tuple[str, ...] = ()
    checklist: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChannelRef:
    id: int
    name: str
    name_en: str | None


@dataclass(frozen=True)
class ReasonRef:
    id: int
    name: str
    name_en: str | None
    kind: str  # "lost" or "disqualify"


@dataclass(frozen=True)
class Reference:
    """What the generator needs from the database: the funnel and the id ranges to use."""

    pipeline_id: int
    stages: tuple[StageRef, ...]  # active stages in position order
    channels: tuple[ChannelRef, ...]
    reasons: tuple[ReasonRef, ...]
    first_ids: dict[str, int] = field(default_factory=dict)  # table -> first id to use

    def first_id(self, table: str) -> int:
        return self.first_ids.get(table, 1)


# --------------------------------------------------------------------------- table columns


class Kind(enum.Enum):
    """How a column's array is turned into database values (see writer.py)."""

    INT = "int"  # int64 array
    INT_NULL = "int?"  # int64 array, NULL where negative
    CODE = "code"  # int array indexing ``pool``; NULL where negative
    TIME = "time"  # int64 µs since the epoch (UTC), NULL where NO_TIME
    DATE = "date"  # int64 days since the epoch, NULL where negative
    MONEY = "money"  # int64 cents, NULL where negative
    TEXT = "text"  # list of str | None
    CONST = "const"  # ``value`` on every row
    SAME = "same"  # the value of column ``same_as`` (same row)


@dataclass
class Column:
    name: str
    kind: Kind
    data: Any = None  # numpy array, or a list for TEXT
    pool: list[str] | None = None
    value: Any = None
    same_as: str | None = None


@dataclass
class TableData:
    """Rows of one table (or one block of a table) as columns."""

    name: str
    n_rows: int
    columns: list[Column]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


@dataclass
class Login:
    role: str
    email: str
    name: str
    team: str | None
    password: str = DEMO_PASSWORD


# --------------------------------------------------------------------------- helpers


def _profile(values: tuple[float, ...] | list[float], n: int) -> FloatArray:
    """A five-point stage profile stretched or squeezed to ``n`` stages."""
    src = np.asarray(values, dtype=np.float64)
    if n == len(src):
        return src.copy()
    return np.interp(np.linspace(0, len(src) - 1, n), np.arange(len(src)), src)


def to_us(t: dt.datetime) -> int:
    if t.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    delta = t.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


def from_us(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(us))


def _starts(counts: IntArray) -> IntArray:
    """Offset of each group in a flat array made of consecutive groups of ``counts``."""
    starts = np.zeros(len(counts), dtype=np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=starts[1:])
    return starts


def reach_probabilities(rates: FloatArray, skip: float) -> FloatArray:
    """P(a deal enters stage k) for continuation ``rates`` (…, S) and the skip rule."""
    n_stages = rates.shape[-1]
    reach = np.zeros_like(rates)
    reach[..., 0] = 1.0
    for k in range(n_stages - 1):
        go = reach[..., k] * rates[..., k]
        if k + 2 < n_stages:
            reach[..., k + 1] += go * (1 - skip)
            reach[..., k + 2] += go * skip
        else:
            reach[..., k + 1] += go
    return reach


@dataclass
class _Transitions:
    """Transition batches, each appended in time order per deal; sorted by deal at the end."""

    parts: list[tuple[IntArray, int, Any, Any, int, int, IntArray]] = field(default_factory=list)

    def add(self, deal: IntArray, kind: int, frm: int | IntArray, to: int | IntArray, fst: int, tst: int,
            at: IntArray) -> None:
        if len(deal):
            self.parts.append((deal, kind, frm, to, fst, tst, at))

    def arrays(self) -> dict[str, IntArray]:
        def cat(i: int) -> IntArray:
            return np.concatenate([np.broadcast_to(np.asarray(p[i], dtype=np.int64), p[0].shape)
                                   for p in self.parts])

        deal = cat(0)
        # Stable: batches were appended in chronological order for every deal.
        order = np.argsort(deal, kind="stable")
        names = ["deal", "kind", "frm", "to", "fst", "tst", "at"]
        return {name: (deal if i == 0 else cat(i))[order] for i, name in enumerate(names)}


# --------------------------------------------------------------------------- the plan


class DemoPlan:
    """The demo company's core, drawn at construction; tables are built on demand."""

    def __init__(self, n_deals: int, seed: int, locale: str, ref: Reference, *,
                 now: dt.datetime | None = None, password_hash: str = "",
                 activity_block: int = ACTIVITY_BLOCK) -> None:
        if n_deals < 1:
            raise ValueError("deals must be at least 1")
        if locale not in ("zh", "en"):
            raise ValueError("locale must be zh or en")
        if len(ref.stages) < 2:
            raise ValueError("the default pipeline needs at least 2 active stages")
        if not ref.channels:
            raise ValueError("no active channels: run the migrations (they create the default channels)")
        if now is None:
            now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        self.n = n_deals
        self.seed = seed
        self.locale = locale
        self.zh = locale == "zh"
        self.now_dt = now.astimezone(dt.UTC)
        self.now = to_us(self.now_dt)
        self.start = self.now - WINDOW_DAYS * DAY_US
        self.ref = ref
        self.password_hash = password_hash
        # Part of the data's identity: activities are drawn per block of this many deals.
        self.activity_block = activity_block
        self.S = len(ref.stages)
        self.tz_offset_us = (8 if self.zh else -5) * HOUR_US  # Asia/Shanghai or US Eastern
        self.currency = "CNY" if self.zh else "USD"
        self.stage_ids = np.array([s.id for s in ref.stages], dtype=np.int64)
        self.deal_ids = ref.first_id("deals") + np.arange(n_deals, dtype=np.int64)
        self._org()
        self._parameters()
        self._created()
        self._simulate()
        self._reasons()
        self._customers()
        self._activity_plan()

    def _rng(self, stream: str, *more: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, STREAMS[stream], *more])

    # ---------------------------------------------------------------- organisation

    def _org(self) -> None:
        rng = self._rng("org")
        self.team_names = (pools.ZH_TEAMS if self.zh else pools.EN_TEAMS)[:N_TEAMS]
        self.team_regions = (pools.ZH_REGIONS if self.zh else pools.EN_REGIONS)[:N_TEAMS]
        self.product_names = pools.ZH_PRODUCTS if self.zh else pools.EN_PRODUCTS
        self.product_lines = pools.ZH_PRODUCT_LINES if self.zh else pools.EN_PRODUCT_LINES
        self.first_product_id = self.ref.first_id("products")
        team0 = self.ref.first_id("teams")
        self.team_ids = np.arange(team0, team0 + N_TEAMS, dtype=np.int64)
        n_users = 1 + N_TEAMS + N_TEAMS * REPS_PER_TEAM
        people = pools.draw_people(rng, n_users, self.locale)
        self.user_roles = [Role.admin] + [Role.manager] * N_TEAMS + [Role.rep] * (N_TEAMS * REPS_PER_TEAM)
        team_of = [-1] + list(range(N_TEAMS)) + [i // REPS_PER_TEAM for i in range(N_TEAMS * REPS_PER_TEAM)]
        emails: list[str] = []
        for i, local in enumerate(people.email_locals):
            email = ADMIN_EMAIL if i == 0 else f"{local}@{DEMO_DOMAIN}"
            k = 2
            while email in emails:  # namesakes get a number, as mail servers do
                email = f"{local}{k}@{DEMO_DOMAIN}"
                k += 1
            emails.append(email)
        user0 = self.ref.first_id("users")
        self.user_ids = np.arange(user0, user0 + n_users, dtype=np.int64)
        self.user_emails = emails
        self.user_names = people.names
        self.user_team = np.array([NO_VALUE if t < 0 else self.team_ids[t] for t in team_of], dtype=np.int64)
        first_rep = 1 + N_TEAMS
        self.rep_user_idx = list(range(first_rep, n_users))
        self.rep_ids = self.user_ids[first_rep:]
        self.rep_team_ids = self.user_team[first_rep:]
        self.rep_team_idx = [team_of[i] for i in self.rep_user_idx]
        self.logins = [
            Login("admin", emails[0], people.names[0], None),
            Login("manager", emails[1], people.names[1], self.team_names[0]),
            Login("rep", emails[first_rep], people.names[first_rep], self.team_names[0]),
        ]

    # ---------------------------------------------------------------- parameters

    def _parameters(self) -> None:
        rng, S = self._rng("params"), self.S
        n_reps = len(self.rep_ids)
        profiles = [CHANNEL_PROFILES.get(c.name_en or "", OTHER_CHANNEL) for c in self.ref.channels]
        share = np.array([p.share for p in profiles])
        self.channel_share = share / share.sum()
        self.channel_cpl = np.array([p.cost_per_lead for p in profiles])
        self.base_rates = np.stack([_profile(p.rates, S) for p in profiles])  # (C, S)
        self.multipliers = np.exp(rng.normal(0.0, 0.10, size=(n_reps, S)))
        # Deliberate bottlenecks: distinct reps, each weak in one middle stage.
        weak_reps = rng.choice(n_reps, size=min(N_WEAK_PAIRS, n_reps), replace=False)
        middle = np.arange(1, S - 1) if S > 2 else np.arange(S)
        weak_stages = rng.choice(middle, size=len(weak_reps), replace=True)
        self.weak_pairs = sorted(zip(weak_reps.tolist(), weak_stages.tolist(), strict=True))
        for r, k in self.weak_pairs:
            self.multipliers[r, k] = WEAK_MULTIPLIER
        w = np.exp(rng.normal(0.0, 0.25, size=n_reps))
        self.rep_weight = w / w.sum()
        self.rates = np.clip(self.base_rates[:, None, :] * self.multipliers[None, :, :], RATE_MIN, RATE_MAX)
        self.median_days = _profile(STAGE_MEDIAN_DAYS, S)
        self.sigma = _profile(STAGE_SIGMA, S)
        self.mu = np.log(self.median_days * 86_400)
        self.max_days = self.median_days * STAY_MAX_FACTOR
        disq = _profile(DISQUALIFY_SHARE, S)
        self.exit_cum = np.stack([disq, disq + STALL_SHARE], axis=1)  # (S, 2): below 1st disq, 2nd stall
        # Capped stays and gaps bound how long the decisions of a deal can take.
        self.decided_after_days = math.ceil(self.max_days.sum() + REOPEN_GAP_MAX_DAYS + self.max_days.max())

    # ---------------------------------------------------------------- deals and their paths

    def _created(self) -> None:
        rng, n = self._rng("created"), self.n
        # Local calendar days of the window; volume grows over time and drops at weekends.
        first_day = (self.start + self.tz_offset_us) // DAY_US + 1
        last_day = (self.now + self.tz_offset_us) // DAY_US
        days = np.arange(first_day, last_day + 1, dtype=np.int64)
        trend = 0.6 + 0.8 * (days - first_day) / max(1, last_day - first_day)
        weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
        p = trend * np.array([1.0, 1.0, 1.0, 1.0, 0.95, 0.25, 0.12])[weekday]
        day = days[rng.choice(len(days), size=n, p=p / p.sum())]
        # 09:00–18:00 local, busiest mid-day.
        in_day = ((9.0 + 9.0 * rng.beta(2.0, 2.0, size=n)) * HOUR_US).astype(np.int64)
        created = day * DAY_US + in_day - self.tz_offset_us
        # Today's deals cannot be later than now: spread them over the elapsed part of today.
        today0 = last_day * DAY_US - self.tz_offset_us
        late = created >= self.now
        created[late] = today0 + (rng.random(int(late.sum())) * (self.now - today0)).astype(np.int64)
        self.created = np.sort(np.maximum(created, self.start + 1))
        self.deal_channel = rng.choice(len(self.ref.channels), size=n, p=self.channel_share)
        self.deal_rep = rng.choice(len(self.rep_ids), size=n, p=self.rep_weight)
        self.deal_owner = self.rep_ids[self.deal_rep]
        self.deal_team = self.rep_team_ids[self.deal_rep]

    def _stay_us(self, rng: np.random.Generator, k: int, m: int) -> IntArray:
        s = np.clip(rng.lognormal(self.mu[k], self.sigma[k], size=m),
                    STAY_MIN_DAYS * 86_400, self.max_days[k] * 86_400)
        return (s * US).astype(np.int64)

    def _simulate(self) -> None:
        rng, n, S, now = self._rng("simulate"), self.n, self.S, self.now
        bits = np.array([s.bit for s in self.ref.stages], dtype=np.int64)
        pos = np.zeros(n, dtype=np.int64)
        t = self.created.copy()
        active = np.ones(n, dtype=bool)
        status = np.full(n, S_OPEN, dtype=np.int64)
        closed_at = np.full(n, NO_TIME, dtype=np.int64)
        close_pos = np.full(n, NO_VALUE, dtype=np.int64)
        stalled = np.zeros(n, dtype=bool)
        reopened = np.zeros(n, dtype=bool)
        skipped = np.zeros(n, dtype=bool)
        mask = np.full(n, 1 << int(bits[0]), dtype=np.int64)
        tr = _Transitions()
        tr.add(np.arange(n, dtype=np.int64), K_CREATE, NO_VALUE, 0, NO_VALUE, S_OPEN, self.created)
        gap_mu = math.log(REOPEN_GAP_MEDIAN_DAYS * 86_400)

        for k in range(S):
            idx = np.flatnonzero(active & (pos == k))
            m = len(idx)
            if m == 0:
                continue
            stay1, stay2 = self._stay_us(rng, k, m), self._stay_us(rng, k, m)
            gap = (np.clip(rng.lognormal(gap_mu, REOPEN_GAP_SIGMA, size=m), STAY_MIN_DAYS * 86_400,
                           REOPEN_GAP_MAX_DAYS * 86_400) * US).astype(np.int64)
            u = rng.random((4, m))
            cont = u[0] < self.rates[self.deal_channel[idx], self.deal_rep[idx], k]
            via_reopen = cont & (u[1] < REOPEN_PROBABILITY) & ~reopened[idx]
            skip = cont & (u[2] < SKIP_PROBABILITY) if k + 2 < S else np.zeros(m, dtype=bool)
            t_exit = t[idx] + stay1
            due = t_exit <= now  # the stay is over by now

            # Exits: disqualified, stalled (stays open, silent) or lost.
            nc = due & ~cont
            disq = nc & (u[3] < self.exit_cum[k, 0])
            stall = nc & (u[3] >= self.exit_cum[k, 0]) & (u[3] < self.exit_cum[k, 1])
            lost = nc & (u[3] >= self.exit_cum[k, 1])
            # Continuations through a lose-and-reopen episode.
            vr = due & via_reopen
            t_reopen = t_exit + gap
            vr_done = vr & (t_reopen <= now)
            t_move = np.where(via_reopen, t_reopen + stay2, t_exit)
            mv = due & cont & (~via_reopen | (vr_done & (t_move <= now)))

            lose_any = lost | vr
            tr.add(idx[lose_any], K_LOSE, k, k, S_OPEN, S_LOST, t_exit[lose_any])
            tr.add(idx[disq], K_DISQ, k, k, S_OPEN, S_DISQ, t_exit[disq])
            tr.add(idx[vr_done], K_REOPEN, k, k, S_LOST, S_OPEN, t_reopen[vr_done])
            final_lost = lost | (vr & ~vr_done)  # lost for now: the reopening is still to come
            for sel, st in ((final_lost, S_LOST), (disq, S_DISQ)):
                status[idx[sel]] = st
                closed_at[idx[sel]] = t_exit[sel]
                close_pos[idx[sel]] = k
            stalled[idx[stall]] = True
            reopened[idx[vr_done]] = True

            moving = idx[mv]
            if k == S - 1:
                tr.add(moving, K_WIN, k, k, S_OPEN, S_WON, t_move[mv])
                status[moving] = S_WON
                closed_at[moving] = t_move[mv]
                active[idx] = False
            else:
                to = k + 1 + skip[mv].astype(np.int64)
                tr.add(moving, K_MOVE, k, to, S_OPEN, S_OPEN, t_move[mv])
                pos[moving] = to
                t[moving] = t_move[mv]
                mask[moving] |= np.left_shift(1, bits[to])
                skipped[moving] |= skip[mv]
                # Whoever did not move on is in their final state (as of now).
                active[idx[~mv]] = False

        self.pos, self.status, self.closed_at, self.mask = pos, status, closed_at, mask
        self.close_pos, self.stalled, self.reopened, self.skipped = close_pos, stalled, reopened, skipped
        self.tr = tr.arrays()
        self.tr_count = np.bincount(self.tr["deal"], minlength=n).astype(np.int64)
        last = _starts(self.tr_count) + self.tr_count - 1
        self.stage_entered_at = self.tr["at"][last]
        self.open_stays = np.bincount(self.tr["deal"][self.tr["tst"] == S_OPEN], minlength=n).astype(np.int64)
        self.entered = [(mask & (1 << int(b))) != 0 for b in bits]

    def _reasons(self) -> None:
        rng, n, S = self._rng("reasons"), self.n, self.S
        self.reason = np.full(n, NO_VALUE, dtype=np.int64)
        u = rng.random(n)
        lost_refs = [r for r in self.ref.reasons if r.kind == "lost"]
        disq_refs = [r for r in self.ref.reasons if r.kind == "disqualify"]
        if lost_refs:
            prof = np.stack([_profile(LOST_REASON_PROFILES.get(r.name_en or "", (0.1,) * 5), S) for r in lost_refs])
            cum = np.cumsum(prof / prof.sum(axis=0, keepdims=True), axis=0)  # (R, S)
            ids = np.array([r.id for r in lost_refs], dtype=np.int64)
            sel = np.flatnonzero(self.status == S_LOST)
            choice = (u[sel][:, None] >= cum[:, self.close_pos[sel]].T).sum(axis=1)
            self.reason[sel] = ids[np.minimum(choice, len(ids) - 1)]
        if disq_refs:
            w = np.array([DISQUALIFY_REASON_WEIGHTS.get(r.name_en or "", 0.2) for r in disq_refs])
            ids = np.array([r.id for r in disq_refs], dtype=np.int64)
            sel = np.flatnonzero(self.status == S_DISQ)
            pick = np.searchsorted(np.cumsum(w / w.sum()), u[sel], side="right")
            self.reason[sel] = ids[np.minimum(pick, len(ids) - 1)]

    # ---------------------------------------------------------------- customers

    def _required(self, field_name: str) -> BoolArray:
        """Deals that entered a stage requiring ``field_name`` (they must have it set)."""
        need = np.zeros(self.n, dtype=bool)
        for s, entered in zip(self.ref.stages, self.entered, strict=True):
            if field_name in s.required_fields:
                need |= entered
        return need

    def _customers(self) -> None:
        """Which company and contact each deal is about; the companies' shape (no strings)."""
        rng, n = self._rng("customers"), self.n
        has_contact = (rng.random(n) < 0.85) | self._required("contact_id")
        has_company = (rng.random(n) < 0.90) | self._required("company_id") | has_contact
        self.has_amount = (rng.random(n) < 0.55) | self._required("amount")
        self.has_expected = (rng.random(n) < 0.30) | self._required("expected_close_date")
        self.has_description = self._required("description")

        # A deal with a company is either the first deal of a new customer, recorded just
        # before it, or repeat business of an earlier customer, mostly the older accounts.
        # Company ids thus follow time, as they would in a real CRM.
        with_company = np.flatnonzero(has_company)
        new = rng.random(len(with_company)) < NEW_CUSTOMER_SHARE
        new[:1] = True  # the first customer is new
        n_new = int(new.sum())
        # Prospects imported before the window, never sold to yet, come first.
        n_prospects = max(5, n_new // 20)
        n_comp = n_prospects + n_new
        seen = n_prospects + np.cumsum(new) - new  # companies that exist before each deal
        older = (seen * rng.random(len(with_company)) ** 2).astype(np.int64)
        comp_of = np.where(new, n_prospects + np.cumsum(new) - 1, older)
        first_deal = with_company[new]
        lead = (HOUR_US + rng.random(n_new) * 3 * DAY_US).astype(np.int64)
        prospect_created = self.start - (rng.random(n_prospects) * 90 * DAY_US).astype(np.int64)
        self.comp_created = np.concatenate([np.sort(prospect_created), self.created[first_deal] - lead])
        # Creation leads vary: keep ids in creation order with a stable sort (rarely moves).
        order = np.argsort(self.comp_created, kind="stable")
        rank = np.empty(n_comp, dtype=np.int64)
        rank[order] = np.arange(n_comp)
        self.comp_created = self.comp_created[order]
        self.comp_owner = np.concatenate([rng.integers(0, len(self.rep_ids), size=n_prospects),
                                          self.deal_rep[first_deal]])[order]
        self.comp_ids = self.ref.first_id("companies") + np.arange(n_comp, dtype=np.int64)
        self.deal_company_idx = np.full(n, NO_VALUE, dtype=np.int64)
        self.deal_company_idx[with_company] = rank[comp_of]
        self.deal_company = np.where(self.deal_company_idx >= 0, self.comp_ids[0] + self.deal_company_idx, NO_VALUE)

        # Name parts: distinct (city, brand, industry) combinations while the pools last.
        self.cities = pools.ZH_CITIES if self.zh else pools.EN_CITIES
        self.industries = pools.ZH_INDUSTRIES if self.zh else pools.EN_INDUSTRIES
        b1 = pools.ZH_BRAND_FIRST if self.zh else [(b, b.lower()) for b in pools.EN_BRAND_FIRST]
        b2 = pools.ZH_BRAND_SECOND if self.zh else [(b, b) for b in pools.EN_BRAND_SECOND]
        self.brands = [(x + y, px + py) for x, px in b1 for y, py in b2 if x != y]
        n_brand, n_ind = len(self.brands), len(self.industries)
        n_combos = len(self.cities) * n_brand * n_ind
        city_w = np.array([c.weight for c in self.cities])
        combo_city = np.arange(n_combos) // (n_brand * n_ind)
        if n_comp <= n_combos:
            # Distinct names, bigger cities more often: weighted sampling without replacement
            # by the Gumbel top-k trick (one pass, no loop).
            key = np.log(city_w[combo_city]) - np.log(-np.log(rng.random(n_combos)))
            combo = np.argpartition(-key, n_comp - 1)[:n_comp]
            combo = combo[rng.permutation(n_comp)]
        else:
            combo = rng.choice(n_combos, size=n_comp, p=(city_w / city_w.sum() / (n_brand * n_ind))[combo_city])
        self.comp_city = combo_city[combo]
        self.comp_brand = combo // n_ind % n_brand
        self.comp_industry = combo % n_ind

        # Contacts: one to a few per company, recorded with it, ids in company order.
        self.contacts_per = 1 + rng.poisson(0.6, size=n_comp).astype(np.int64)
        self.contact_start = _starts(self.contacts_per)
        self.contact0 = self.ref.first_id("contacts")
        wc = np.flatnonzero(has_contact)
        ci = self.deal_company_idx[wc]
        pick = (rng.random(len(wc)) * self.contacts_per[ci]).astype(np.int64)
        self.deal_contact = np.full(n, NO_VALUE, dtype=np.int64)
        self.deal_contact[wc] = self.contact0 + self.contact_start[ci] + pick
        self.n_companies = n_comp
        self.n_contacts = int(self.contacts_per.sum())

    # ---------------------------------------------------------------- how many activities, until when

    def _activity_plan(self) -> None:
        rng, n, now = self._rng("activity_plan"), self.n, self.now
        factor = np.array([OUTCOME_ACTIVITY_FACTOR[s] for s in STATUSES])[self.status]
        w = self.open_stays * factor
        self.activity_count = rng.poisson(w * (ACTIVITIES_PER_DEAL * n / w.sum())).astype(np.int64)
        # Activities happen while the deal is alive: until it closed, until now, or, for a
        # stalled deal, for a few weeks after it stalled (then it goes quiet).
        end = np.where(self.closed_at != NO_TIME, self.closed_at, now)
        stall_end = self.stage_entered_at + (rng.uniform(3, 30, size=n) * DAY_US).astype(np.int64)
        end = np.where(self.stalled, np.minimum(stall_end, now), end)
        # The last of c uniform times in the deal's life is at fraction U^(1/c) of it; the
        # activity blocks draw the others below it, so deals know it without them.
        frac = rng.random(n) ** (1.0 / np.maximum(self.activity_count, 1))
        last = self.created + (frac * (end - self.created)).astype(np.int64)
        self.last_activity_at = np.where(self.activity_count > 0, last, NO_TIME)
        self.activity_start = _starts(self.activity_count)
        self.n_activities = int(self.activity_count.sum())
        self.n_blocks = -(-n // self.activity_block)

    # ---------------------------------------------------------------- tables

    def n_rows(self, table: str) -> int:
        return {
            "teams": N_TEAMS, "users": len(self.user_ids), "products": len(self.product_names),
            "companies": self.n_companies,
            "contacts": self.n_contacts, "deals": self.n, "stage_transitions": len(self.tr["deal"]),
            "activities": self.n_activities, "tasks": self.n_tasks(), "channel_spend": len(self.ref.channels)
            * len(self._months()),
        }[table]

    def table_parts(self, table: str, blocks: range | None = None) -> Iterator[TableData]:
        """The rows of ``table``: one part, or for activities one part per block of deals."""
        if table == "activities":
            for b in blocks if blocks is not None else range(self.n_blocks):
                yield self.activities(b)
            return
        yield getattr(self, table)()

    def teams(self) -> TableData:
        created = self.start - 60 * DAY_US + np.arange(N_TEAMS, dtype=np.int64) * HOUR_US
        return TableData("teams", N_TEAMS, [
            Column("id", Kind.INT, self.team_ids),
            Column("name", Kind.TEXT, list(self.team_names)),
            Column("region", Kind.TEXT, list(self.team_regions)),
            Column("created_at", Kind.TIME, created),
        ])

    def products(self) -> TableData:
        """What the deals sell: one product per title's product name, with its line and
        list price (the deal amounts are drawn independently of it)."""
        n = len(self.product_names)
        return TableData("products", n, [
            Column("id", Kind.INT, self.first_product_id + np.arange(n, dtype=np.int64)),
            Column("name", Kind.TEXT, list(self.product_names)),
            Column("series", Kind.TEXT, [line for line, _price in self.product_lines]),
            Column("list_price", Kind.MONEY, np.array([price * 100 for _line, price in self.product_lines],
                                                       dtype=np.int64)),
            Column("is_active", Kind.CONST, value=True),
            Column("created_at", Kind.TIME, self.start - 60 * DAY_US + np.zeros(n, dtype=np.int64)),
        ])

    def users(self) -> TableData:
        n = len(self.user_ids)
        created = self.start - 60 * DAY_US + HOUR_US * (5 + np.arange(n, dtype=np.int64))
        return TableData("users", n, [
            Column("id", Kind.INT, self.user_ids),
            Column("email", Kind.TEXT, self.user_emails),
            Column("name", Kind.TEXT, self.user_names),
            Column("role", Kind.TEXT, [r.value for r in self.user_roles]),
            Column("team_id", Kind.INT_NULL, self.user_team),
            Column("password_hash", Kind.CONST, value=self.password_hash),
            Column("is_active", Kind.CONST, value=True),
            Column("locale", Kind.CONST, value="zh-CN" if self.zh else "en"),
            Column("timezone", Kind.CONST, value="Asia/Shanghai" if self.zh else "America/New_York"),
            Column("created_at", Kind.TIME, created),
            Column("version", Kind.CONST, value=1),
        ])

    def _domains(self) -> list[str]:
        rng = self._rng("companies", 1)
        tlds = pools.ZH_TLDS if self.zh else pools.EN_TLDS
        tld = rng.integers(0, len(tlds), size=self.n_companies).tolist()
        brands, industries = self.brands, self.industries
        return [brands[b][1] + industries[i].slug + "." + tlds[x]
                for b, i, x in zip(self.comp_brand.tolist(), self.comp_industry.tolist(), tld, strict=True)]

    def companies(self) -> TableData:
        rng, n = self._rng("companies"), self.n_companies
        cities, brands, industries = self.cities, self.brands, self.industries
        legal_pool = pools.ZH_LEGAL if self.zh else pools.EN_LEGAL
        legal = rng.integers(0, len(legal_pool), size=n).tolist()
        bl, il, cl = self.comp_brand.tolist(), self.comp_industry.tolist(), self.comp_city.tolist()
        if self.zh:
            names = [cities[c].name + brands[b][0] + industries[i].word + legal_pool[lg]
                     for c, b, i, lg in zip(cl, bl, il, legal, strict=True)]
        else:
            names = [brands[b][0] + " " + industries[i].word + " " + legal_pool[lg]
                     for b, i, lg in zip(bl, il, legal, strict=True)]
        domains = self._domains()
        site, mail, phone_ok = (rng.random((3, n)) < np.array([[0.85], [0.7], [0.8]])).tolist()
        phones = pools.landline(rng, self.comp_city, cities, self.locale)
        return TableData("companies", n, [
            Column("id", Kind.INT, self.comp_ids),
            Column("name", Kind.TEXT, names),
            Column("industry", Kind.TEXT, [industries[i].label for i in il]),
            Column("city", Kind.TEXT, [cities[c].name for c in cl]),
            Column("website", Kind.TEXT, ["www." + d if s else None for d, s in zip(domains, site, strict=True)]),
            Column("phone", Kind.TEXT, [p if s else None for p, s in zip(phones, phone_ok, strict=True)]),
            Column("email", Kind.TEXT, ["info@" + d if s else None for d, s in zip(domains, mail, strict=True)]),
            Column("owner_id", Kind.INT, self.rep_ids[self.comp_owner]),
            Column("team_id", Kind.INT, self.rep_team_ids[self.comp_owner]),
            Column("created_at", Kind.TIME, self.comp_created),
            Column("updated_at", Kind.SAME, same_as="created_at"),
            Column("version", Kind.CONST, value=1),
        ])

    def contacts(self) -> TableData:
        rng, n = self._rng("contacts"), self.n_contacts
        comp = np.repeat(np.arange(self.n_companies, dtype=np.int64), self.contacts_per)
        people = pools.draw_people(rng, n, self.locale)
        domains = self._domains()
        mail, phone_ok = (rng.random((2, n)) < np.array([[0.8], [0.9]])).tolist()
        mails = [loc + "@" + domains[c] if s else None
                 for loc, c, s in zip(people.email_locals, comp.tolist(), mail, strict=True)]
        mobiles = pools.mobile_phones(rng, n, self.locale)
        titles = pools.ZH_TITLES if self.zh else pools.EN_TITLES
        owner = self.comp_owner[comp]
        return TableData("contacts", n, [
            Column("id", Kind.INT, self.contact0 + np.arange(n, dtype=np.int64)),
            Column("name", Kind.TEXT, people.names),
            Column("company_id", Kind.INT, self.comp_ids[comp]),
            Column("title", Kind.CODE, rng.integers(0, len(titles), size=n), pool=list(titles)),
            Column("phone", Kind.TEXT, [p if s else None for p, s in zip(mobiles, phone_ok, strict=True)]),
            Column("email", Kind.TEXT, mails),
            Column("owner_id", Kind.INT, self.rep_ids[owner]),
            Column("team_id", Kind.INT, self.rep_team_ids[owner]),
            Column("created_at", Kind.TIME, self.comp_created[comp] + (rng.random(n) * HOUR_US).astype(np.int64)),
            Column("updated_at", Kind.SAME, same_as="created_at"),
            Column("version", Kind.CONST, value=1),
        ])

    def deals(self) -> TableData:
        rng, n = self._rng("deals"), self.n
        # Amounts: lognormal around 50,000, rounded to hundreds, stored in cents.
        amount = np.clip(np.round(rng.lognormal(math.log(50_000), 0.9, size=n) / 100) * 100, 1_000, 5_000_000)
        amount_cents = np.where(self.has_amount, (amount * 100).astype(np.int64), NO_VALUE)
        horizon = np.clip(np.round(rng.lognormal(math.log(60), 0.5, size=n)), 7, 365).astype(np.int64)
        expected = np.where(self.has_expected, self.created // DAY_US + horizon, NO_VALUE)

        # Checklists confirmed for every entered stage that has one, stored as the service does.
        check_stages = [(i, s) for i, s in enumerate(self.ref.stages) if s.checklist]
        key = np.zeros(n, dtype=np.int64)
        for j, (i, _s) in enumerate(check_stages):
            key |= self.entered[i].astype(np.int64) << j
        check_pool = [json.dumps({str(s.id): sorted(s.checklist) for j, (_i, s) in enumerate(check_stages)
                                  if code >> j & 1}) for code in range(1 << len(check_stages))]

        products = self.product_names
        product_idx = rng.integers(0, len(products), size=n)
        product = product_idx.tolist()
        lead_city = rng.integers(0, len(self.cities), size=n).tolist()
        sep, lead_word = (" · ", "线索") if self.zh else (" – ", " lead")
        shorts = [self.brands[b][0] + (self.industries[i].word if self.zh else "")
                  for b, i in zip(self.comp_brand.tolist(), self.comp_industry.tolist(), strict=True)]
        titles = [(shorts[c] if c >= 0 else self.cities[lc].name + lead_word) + sep + products[p]
                  for c, p, lc in zip(self.deal_company_idx.tolist(), product, lead_city, strict=True)]
        need = "客户需求：" if self.zh else "Customer need: "
        descriptions = [need + products[p] if d else None
                        for p, d in zip(product, self.has_description.tolist(), strict=True)]
        return TableData("deals", n, [
            Column("id", Kind.INT, self.deal_ids),
            Column("title", Kind.TEXT, titles),
            Column("pipeline_id", Kind.CONST, value=self.ref.pipeline_id),
            Column("stage_id", Kind.INT, self.stage_ids[self.pos]),
            Column("status", Kind.CODE, self.status, pool=[s.value for s in STATUSES]),
            Column("owner_id", Kind.INT, self.deal_owner),
            Column("team_id", Kind.INT, self.deal_team),
            Column("company_id", Kind.INT_NULL, self.deal_company),
            Column("contact_id", Kind.INT_NULL, self.deal_contact),
            Column("channel_id", Kind.INT, np.array([c.id for c in self.ref.channels])[self.deal_channel]),
            Column("product_id", Kind.INT, self.first_product_id + product_idx),
            Column("amount", Kind.MONEY, amount_cents),
            Column("currency", Kind.CONST, value=self.currency),
            Column("expected_close_date", Kind.DATE, expected),
            Column("lost_reason_id", Kind.INT_NULL, self.reason),
            Column("close_note", Kind.CONST, value=None),
            Column("checklist_done", Kind.CODE, key, pool=check_pool),
            Column("description", Kind.TEXT, descriptions),
            Column("created_by_id", Kind.SAME, same_as="owner_id"),
            Column("created_at", Kind.TIME, self.created),
            Column("updated_at", Kind.SAME, same_as="stage_entered_at"),
            Column("closed_at", Kind.TIME, self.closed_at),
            Column("stage_entered_at", Kind.TIME, self.stage_entered_at),
            Column("reached_mask", Kind.INT, self.mask),
            Column("last_activity_at", Kind.TIME, self.last_activity_at),
            Column("activity_count", Kind.INT, self.activity_count),
            # The ORM bumps the version once per change; one change per transition.
            Column("version", Kind.INT, self.tr_count),
        ])

    def stage_transitions(self) -> TableData:
        tr = self.tr
        m = len(tr["deal"])
        same_deal = np.zeros(m, dtype=bool)
        same_deal[:-1] = tr["deal"][1:] == tr["deal"][:-1]
        nxt = np.empty(m, dtype=np.int64)
        nxt[:-1] = tr["at"][1:]
        # Whole seconds spent in this state, as deal.service writes them (int() truncates).
        duration = np.where(same_deal, (nxt - tr["at"]) // US, NO_VALUE)
        from_stage = np.where(tr["frm"] >= 0, self.stage_ids[np.maximum(tr["frm"], 0)], NO_VALUE)
        statuses = [s.value for s in STATUSES]
        return TableData("stage_transitions", m, [
            Column("deal_id", Kind.INT, self.deal_ids[tr["deal"]]),
            Column("pipeline_id", Kind.CONST, value=self.ref.pipeline_id),
            Column("kind", Kind.CODE, tr["kind"], pool=[k.value for k in KINDS]),
            Column("from_stage_id", Kind.INT_NULL, from_stage),
            Column("to_stage_id", Kind.INT, self.stage_ids[tr["to"]]),
            Column("from_status", Kind.CODE, tr["fst"], pool=statuses),  # NULL on the create row
            Column("to_status", Kind.CODE, tr["tst"], pool=statuses),
            Column("at", Kind.TIME, tr["at"]),
            Column("by_id", Kind.INT, self.deal_owner[tr["deal"]]),
            Column("duration_s", Kind.INT_NULL, duration),
        ])

    def activities(self, block: int) -> TableData:
        """Activities of the deals of one block, in deal order then time order."""
        rng = self._rng("activities", block)
        d0, d1 = block * self.activity_block, min(self.n, (block + 1) * self.activity_block)
        counts = self.activity_count[d0:d1]
        m = int(counts.sum())
        first_id = self.ref.first_id("activities") + int(self.activity_start[d0]) if d0 < self.n else 0
        deal = d0 + np.repeat(np.arange(d1 - d0, dtype=np.int64), counts)
        # Sorted uniform times below each deal's last activity without sorting: normalised
        # running sums of exponential spacings; the last of each deal lands on its last time.
        spacing = rng.standard_exponential(m)
        csum = np.cumsum(spacing)
        starts = _starts(counts)
        ends = starts + counts - 1
        has = counts > 0
        before = np.zeros(len(counts))
        before[has] = csum[starts[has]] - spacing[starts[has]]
        total = np.ones(len(counts))
        total[has] = csum[ends[has]] - before[has]
        local = deal - d0
        frac = (csum - before[local]) / total[local]
        start = self.created[deal]
        occurred = start + (frac * (self.last_activity_at[deal] - start)).astype(np.int64)
        occurred[ends[has]] = self.last_activity_at[d0:d1][has]

        # Kind by the furthest stage reached (later deals meet and visit more): a single
        # searchsorted over the per-stage cumulative mixes, offset by stage.
        mix = np.array(ACTIVITY_MIX)[np.round(np.linspace(0, len(ACTIVITY_MIX) - 1, self.S)).astype(np.int64)]
        cum = (np.cumsum(mix, axis=1) + np.arange(self.S)[:, None]).ravel()
        p = self.pos[deal]
        kind = np.searchsorted(cum, rng.random(m) + p, side="right") - p * len(ACTIVITY_KINDS)
        kind = np.clip(kind, 0, len(ACTIVITY_KINDS) - 1)
        subjects = pools.ZH_SUBJECTS if self.zh else pools.EN_SUBJECTS
        subject_pool: list[str] = []
        offsets, sizes = [], []
        for k in ACTIVITY_KINDS:
            offsets.append(len(subject_pool))
            sizes.append(len(subjects[k]))
            subject_pool.extend(subjects[k])
        subject = np.array(offsets)[kind] + (rng.random(m) * np.array(sizes)[kind]).astype(np.int64)
        duration = np.full(m, NO_VALUE, dtype=np.int64)
        call, meeting, visit = kind == 0, kind == 2, kind == 3
        duration[call] = np.clip(np.round(rng.lognormal(math.log(6.0), 0.8, size=int(call.sum()))), 1, 90)
        duration[meeting] = np.array([30, 45, 60, 90, 120])[rng.integers(0, 5, size=int(meeting.sum()))]
        duration[visit] = np.array([60, 90, 120, 180])[rng.integers(0, 4, size=int(visit.sum()))]
        return TableData("activities", m, [
            Column("id", Kind.INT, first_id + np.arange(m, dtype=np.int64)),
            Column("kind", Kind.CODE, kind, pool=list(ACTIVITY_KINDS)),
            Column("subject", Kind.CODE, subject, pool=subject_pool),
            Column("deal_id", Kind.INT, self.deal_ids[deal]),
            Column("company_id", Kind.INT_NULL, self.deal_company[deal]),
            Column("contact_id", Kind.INT_NULL, self.deal_contact[deal]),
            Column("owner_id", Kind.INT, self.deal_owner[deal]),
            Column("team_id", Kind.INT, self.deal_team[deal]),
            Column("occurred_at", Kind.TIME, occurred),
            Column("duration_min", Kind.INT_NULL, duration),
            Column("created_at", Kind.SAME, same_as="occurred_at"),
            Column("version", Kind.CONST, value=1),
        ])

    def _task_deals(self) -> IntArray:
        rng = self._rng("tasks", 0)
        open_deals = np.flatnonzero(self.status == S_OPEN)
        return open_deals[rng.random(len(open_deals)) < 0.45]

    def n_tasks(self) -> int:
        return len(self._task_deals())

    def tasks(self) -> TableData:
        """Follow-ups on open deals: overdue, due today (local time) and upcoming."""
        rng, now = self._rng("tasks", 1), self.now
        pick = self._task_deals()
        m = len(pick)
        since = self.stage_entered_at[pick]
        u = rng.random(m)
        overdue, today = u < 0.35, (u >= 0.35) & (u < 0.55)
        local_day0 = ((now + self.tz_offset_us) // DAY_US) * DAY_US - self.tz_offset_us
        # Overdue by up to a month, never due before the deal reached its stage.
        late = np.minimum(now - since, 30 * DAY_US)
        due = np.where(
            overdue, now - (rng.random(m) * late).astype(np.int64),
            np.where(today, local_day0 + ((9 + 9 * rng.random(m)) * HOUR_US).astype(np.int64),
                     now + ((1 + 20 * rng.random(m)) * DAY_US).astype(np.int64)))
        created = since + (rng.random(m) * (np.minimum(due, now) - since)).astype(np.int64)
        # A few overdue tasks were done, late: done_at between their due time and now.
        done = overdue & (rng.random(m) < 0.15)
        done_at = np.where(done, due + (rng.random(m) * (now - due)).astype(np.int64), NO_TIME)
        titles = pools.ZH_TASKS if self.zh else pools.EN_TASKS
        return TableData("tasks", m, [
            Column("title", Kind.CODE, rng.integers(0, len(titles), size=m), pool=list(titles)),
            Column("notes", Kind.CONST, value=None),
            Column("deal_id", Kind.INT, self.deal_ids[pick]),
            Column("company_id", Kind.INT_NULL, self.deal_company[pick]),
            Column("contact_id", Kind.INT_NULL, self.deal_contact[pick]),
            Column("owner_id", Kind.INT, self.deal_owner[pick]),
            Column("team_id", Kind.INT, self.deal_team[pick]),
            Column("due_at", Kind.TIME, due),
            Column("done_at", Kind.TIME, done_at),
            Column("priority", Kind.INT, rng.choice(3, size=m, p=[0.2, 0.6, 0.2]).astype(np.int64) + 1),
            Column("created_at", Kind.TIME, created),
            Column("updated_at", Kind.TIME, np.where(done, done_at, created)),
            Column("version", Kind.INT, 1 + done.astype(np.int64)),
        ])

    def _months(self) -> list[dt.date]:
        m, end = from_us(self.start).date().replace(day=1), from_us(self.now).date().replace(day=1)
        months = []
        while m <= end:
            months.append(m)
            m = (m + dt.timedelta(days=32)).replace(day=1)
        return months

    def channel_spend(self) -> TableData:
        rng = self._rng("spend")
        months = self._months()
        epoch = dt.date(1970, 1, 1)
        month_days = np.array([(x - epoch).days for x in months], dtype=np.int64)
        month_of_deal = np.searchsorted(month_days * DAY_US, self.created, side="right") - 1
        n_ch = len(self.ref.channels)
        leads = np.zeros((n_ch, len(months)), dtype=np.float64)
        np.add.at(leads, (self.deal_channel, month_of_deal), 1.0)
        # Spend follows lead volume at the channel's cost per lead, with month-to-month noise;
        # a channel always costs something (salaries, subscriptions) even in a quiet month.
        noise = rng.lognormal(0.0, 0.15, size=leads.shape)
        spend = (np.maximum(leads, 1.0) * self.channel_cpl[:, None] * noise).round()
        ch_idx, mo_idx = np.meshgrid(np.arange(n_ch), np.arange(len(months)), indexing="ij")
        ch_ids = np.array([c.id for c in self.ref.channels], dtype=np.int64)
        return TableData("channel_spend", ch_idx.size, [
            Column("channel_id", Kind.INT, ch_ids[ch_idx.ravel()]),
            Column("month", Kind.DATE, month_days[mo_idx.ravel()]),
            Column("amount", Kind.MONEY, (spend.ravel() * 100).astype(np.int64)),
            Column("currency", Kind.CONST, value=self.currency),
        ])

    # ---------------------------------------------------------------- the truth

    def truth(self) -> dict[str, Any]:
        S = self.S
        reach = reach_probabilities(self.rates, SKIP_PROBABILITY)  # (C, R, S)
        share = self.channel_share[:, None, None]
        weight = self.rep_weight[None, :, None]
        # E[continued_k] / E[reached_k] of a cohort: reach-weighted means of the exact rates.
        chan_cont = (weight * reach * self.rates).sum(axis=1) / (weight * reach).sum(axis=1)  # (C, S)
        rep_cont = (share * reach * self.rates).sum(axis=0) / (share * reach).sum(axis=0)  # (R, S)
        mass = share * weight
        overall = (mass * reach * self.rates).sum(axis=(0, 1)) / (mass * reach).sum(axis=(0, 1))
        rep_emails = [self.user_emails[i] for i in self.rep_user_idx]
        status_counts = np.bincount(self.status, minlength=4)
        stages = self.ref.stages

        def floats(a: Any) -> list[float]:
            return [float(x) for x in a]

        return {
            "version": 1,
            "seed": self.seed,
            "deals": self.n,
            "locale": self.locale,
            "now": self.now_dt.isoformat(),
            "window_days": WINDOW_DAYS,
            "decided_after_days": self.decided_after_days,
            "skip_probability": SKIP_PROBABILITY,
            "reopen_probability": REOPEN_PROBABILITY,
            "stages": [{"position": k, "stage_id": s.id, "bit": s.bit, "name": s.name, "name_en": s.name_en}
                       for k, s in enumerate(stages)],
            "exit_mix": [{"position": k, "disqualified": float(self.exit_cum[k, 0]),
                          "stalled": float(self.exit_cum[k, 1] - self.exit_cum[k, 0]),
                          "lost": float(1 - self.exit_cum[k, 1])} for k in range(S)],
            "time_in_stage": [{"position": k, "distribution": "lognormal", "unit": "seconds",
                               "mu": float(self.mu[k]), "sigma": float(self.sigma[k]),
                               "median_days": float(self.median_days[k]), "min_days": STAY_MIN_DAYS,
                               "max_days": float(self.max_days[k])} for k in range(S)],
            "reopen_gap": {"distribution": "lognormal", "unit": "seconds",
                           "mu": math.log(REOPEN_GAP_MEDIAN_DAYS * 86_400), "sigma": REOPEN_GAP_SIGMA,
                           "median_days": REOPEN_GAP_MEDIAN_DAYS, "max_days": REOPEN_GAP_MAX_DAYS},
            "channels": [{"channel_id": c.id, "name": c.name, "name_en": c.name_en,
                          "share": float(self.channel_share[i]), "base_rates": floats(self.base_rates[i]),
                          "continuation": floats(chan_cont[i])} for i, c in enumerate(self.ref.channels)],
            "reps": [{"user_id": int(self.rep_ids[r]), "email": rep_emails[r],
                      "name": self.user_names[self.rep_user_idx[r]], "team": self.team_names[self.rep_team_idx[r]],
                      "weight": float(self.rep_weight[r]), "multipliers": floats(self.multipliers[r]),
                      "continuation": floats(rep_cont[r])} for r in range(len(self.rep_ids))],
            "rates": {rep_emails[r]: {str(c.id): floats(self.rates[i, r]) for i, c in enumerate(self.ref.channels)}
                      for r in range(len(self.rep_ids))},
            "weak_pairs": [{"rep_email": rep_emails[r], "user_id": int(self.rep_ids[r]), "stage_position": k,
                            "stage_id": stages[k].id, "multiplier": WEAK_MULTIPLIER} for r, k in self.weak_pairs],
            "overall_continuation": floats(overall),
            "counts": {
                "deals": self.n, "transitions": len(self.tr["deal"]), "activities": self.n_activities,
                "tasks": self.n_tasks(), "companies": self.n_companies, "contacts": self.n_contacts,
                "users": len(self.user_ids), "teams": N_TEAMS, "channel_spend": self.n_rows("channel_spend"),
                "open": int(status_counts[S_OPEN]), "won": int(status_counts[S_WON]),
                "lost": int(status_counts[S_LOST]), "disqualified": int(status_counts[S_DISQ]),
                "stalled": int(self.stalled.sum()), "skipped": int(self.skipped.sum()),
                "reopened": int(self.reopened.sum()),
            },
        }
