"""The plan (抽查计划, SPEC §2): one YAML file per run, read into a typed, checked model.

Loaded with `yaml.safe_load` (no object construction); unknown keys are errors that
name the key, so a misspelt parameter is never silently ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

import polars as pl
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from jointdraw.transforms import settings
from jointdraw.transforms.entity_types import parse_registered_type
from jointdraw.transforms.industry import industry_reasons, is_valid_industry, normalise_industry
from jointdraw.transforms.registry import ENUMS

CreditClass = Annotated[str, Field(pattern=r"^[ABCD]$")]
SafeId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]  # = SAFE_ID: names folders


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Period(_Strict):
    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ends_after_start(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")
        return self


class Scope(_Strict):
    """定向 filters; every list left empty means no filter on that attribute."""

    industries: list[str] = []  # GB/T 4754-2017 sections, divisions, groups or classes (H, 62, H62, 621, I6513, 餐饮业)
    entity_types: list[str] = []
    districts: list[str] = []
    tags: list[str] = []
    # the type as registered (市场主体类型代码): type codes or names (4533, 有限合伙企业), and what the
    # type-code table says of a type: foreign-invested (外商投资/港澳台/外国（地区）), a branch (分公司)
    registered_types: list[str] = []
    foreign_invested: bool | None = None
    branch: bool | None = None

    @field_validator("registered_types")
    @classmethod
    def _type_codes(cls, values: list[str]) -> list[str]:
        """Each as its code in data/reference/entity_types.csv (有限合伙企业 → 4533)."""
        parsed = [parse_registered_type(v) for v in values]
        bad = [v for v, p in zip(values, parsed, strict=True) if not p["code"]]
        if bad:
            raise ValueError(
                f"scope registered_types {bad} are not types with a code in data/reference/entity_types.csv"
            )
        return [p["code"] for p in parsed]  # type: ignore[misc]

    @field_validator("industries")
    @classmethod
    def _industry_codes(cls, values: list[str]) -> list[str]:
        """Each written as the directory writes it (62 → H62), so a scope entry is a prefix of the codes it covers."""
        codes = [normalise_industry(v) or "" for v in values]
        if all(is_valid_industry(c) for c in codes):
            return codes
        bad = [
            v for v, reason in zip(values, industry_reasons(pl.Series(codes, dtype=pl.String)), strict=True) if reason
        ]
        if bad:
            raise ValueError(
                f"scope industries {bad} are not GB/T 4754-2017 sections, divisions, groups or classes "
                "(data/reference/industries_gbt4754_2017.csv)"
            )
        return codes


# How a department's share of a joint task is staffed (SPEC §4.6, issue 21): `local_first` takes the
# entity's district (片区) when that pool can, else the department's whole pool; `cross_district`
# (所所交叉, against local capture) never sends anyone from the entity's district; `any` draws from
# the department's whole pool with no preference.
AssignMode = Literal["local_first", "cross_district", "any"]
ASSIGN_MODES: tuple[AssignMode, ...] = ("cross_district", "local_first", "any")  # strictest first


class AssignRules(_Strict):
    mode: AssignMode = "local_first"


Ratio = Annotated[float, Field(ge=0, le=1)]
CREDIT_CLASSES = ("A", "B", "C", "D")


class ClassRatio(_Strict):
    """One credit class of a ratio task with a floor and/or a cap, as the plan writes it:
    `D: {ratio: 0.1, min_count: 2, max_count: 40}` draws k = min(N, max(min_count, min(max_count, ceil(ratio × N))))
    (transforms/strata.py). A bare number (`D: 0.1`) is the ratio without floor or cap."""

    ratio: Ratio
    min_count: Annotated[int, Field(ge=0)] | None = None  # None: no floor (0)
    max_count: Annotated[int, Field(ge=0)] | None = None  # None: no cap


def _rule_kind(value: object) -> str:
    return "rule" if isinstance(value, dict | ClassRatio) else "ratio"


# a class's entry in `ratio`: a number, or a mapping with min_count / max_count (errors name which form was read)
ClassRule = Annotated[Annotated[Ratio, Tag("ratio")] | Annotated[ClassRatio, Tag("rule")], Discriminator(_rule_kind)]


def _inspection_value(value: str, enum: str, what: str) -> str:
    """A kind or level as the inspections files write it (双随机抽查, 投诉举报, 市级 …) → its canonical value."""
    from jointdraw.transforms.normalise import enum_key  # the enumerations' one comparison

    spellings = {enum_key(k): v for k, v in ENUMS[enum].items()}
    canonical = spellings.get(enum_key(str(value)))
    if canonical is None:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(sorted(set(spellings.values())))}")
    return canonical


class VisitCaps(_Strict):
    """How often one entity may be inspected in a calendar year, counting every kind of inspection the
    departments submit in `<DEPT>/inspections.*` (random, complaint, referral, licence, other) but the
    exempt kinds: an entity at or over a cap is excluded (transforms/visit_caps.py)."""

    total: Annotated[int, Field(ge=1)] | None = None  # inspections by every department, every level
    per_department: Annotated[int, Field(ge=1)] | None = None  # by one department: binds that department's tasks
    per_level: dict[str, Annotated[int, Field(ge=1)]] = {}  # by authorities of one level: binds the plan's `level`
    level: str = "city"  # the level of this plan's inspections (a city's joint draw: city)
    exempt_kinds: list[str] = []  # kinds that never count (e.g. complaint, referral: they follow a cause)

    @field_validator("per_level")
    @classmethod
    def _levels(cls, caps: dict[str, int]) -> dict[str, int]:
        return {_inspection_value(k, "inspection_level", "visit_caps per_level"): v for k, v in caps.items()}

    @field_validator("level")
    @classmethod
    def _level(cls, value: str) -> str:
        return _inspection_value(value, "inspection_level", "visit_caps level")

    @field_validator("exempt_kinds")
    @classmethod
    def _kinds(cls, values: list[str]) -> list[str]:
        return sorted({_inspection_value(v, "inspection_kind", "visit_caps exempt_kinds") for v in values})

    @model_validator(mode="after")
    def _some_cap(self) -> VisitCaps:
        if self.total is None and self.per_department is None and not self.per_level:
            raise ValueError("visit_caps sets no cap: give `total`, `per_department` or `per_level`")
        return self


class Task(_Strict):
    task_id: SafeId
    department: SafeId
    title: str = ""
    items: list[str] = Field(min_length=1)
    scope: Scope | None = None  # None: 不定向, the department's whole directory
    # per credit class: the ratio, or {ratio, min_count, max_count}; a class not named draws nothing
    ratio: dict[CreditClass, ClassRule] | None = None
    count: Annotated[int, Field(ge=0)] | None = None
    group: SafeId | None = None  # coordination group (SPEC §4.4)
    assign: AssignRules | None = None  # None: the plan's

    @model_validator(mode="after")
    def _ratio_or_count(self) -> Task:
        if (self.ratio is None) == (self.count is None):
            raise ValueError(f"task {self.task_id}: give exactly one of `ratio` (per credit class) or `count`")
        return self

    @model_validator(mode="after")
    def _floor_not_above_cap(self) -> Task:
        bad = [
            f"task {self.task_id} class {c}: min_count {r.min_count} is above max_count {r.max_count} "
            "(the floor must not exceed the cap)"
            for c, r in (self.ratio or {}).items()
            if isinstance(r, ClassRatio) and r.max_count is not None and (r.min_count or 0) > r.max_count
        ]
        if bad:
            raise ValueError("; ".join(bad))
        return self

    def class_ratio(self, credit_class: str) -> ClassRatio:
        """The rule of one class of a ratio task, written out: a bare ratio has no floor or cap, a class the
        task does not name has ratio 0."""
        given = (self.ratio or {}).get(credit_class, 0.0)
        return given if isinstance(given, ClassRatio) else ClassRatio(ratio=given)


class PolicyBand(_Strict):
    """The ratios a plan's policy allows for one credit class (e.g. A lowest, D highest), bounds included."""

    min: Ratio = 0.0
    max: Ratio = 1.0

    @model_validator(mode="after")
    def _min_not_above_max(self) -> PolicyBand:
        if self.min > self.max:
            raise ValueError(f"band min {self.min} is above its max {self.max}")
        return self


def policy_problems(tasks: list[Task], bands: dict[str, PolicyBand], no_zero_class: bool) -> list[str]:
    """The one home of the plan's policy: every ratio task's ratio of a class lies in the class's band, and
    with `no_zero_class` every ratio task draws from every class (ratio > 0 or min_count > 0, and no
    max_count of 0). Count tasks are outside both: a count is split over the classes by their sizes.
    One message per task and class, naming both and what to change."""
    problems = []
    for t in tasks:
        if t.ratio is None:
            continue
        for c in CREDIT_CLASSES:
            rule, band = t.class_ratio(c), bands.get(c)
            written = f"{rule.ratio}" if c in t.ratio else "0 (class not given)"
            if band is not None and not band.min <= rule.ratio <= band.max:
                problems.append(
                    f"task {t.task_id} class {c}: ratio {written} is outside the plan's policy band for class {c} "
                    f"[{band.min}, {band.max}] (policy_bands.{c}); change the task's ratio or the band"
                )
            if no_zero_class and (rule.max_count == 0 or (rule.ratio == 0 and not rule.min_count)):
                problems.append(
                    f"task {t.task_id} class {c}: draws no object of class {c} "
                    f"({'max_count 0' if rule.max_count == 0 else f'ratio {written}, no min_count'}) but the plan "
                    f"says no_zero_class; give class {c} a ratio above 0 or a min_count"
                )
    return problems


class KpiTargets(_Strict):
    """The yearly figures' targets (考核目标) a plan sets, each a share in [0, 1]; a figure under its target is
    flagged 未达标 in every output of `jointdraw kpi` (transforms/kpi.py defines each figure)."""

    coverage: Ratio | None = None  # entities inspected / entities supervised
    items_drawn: Ratio | None = None  # items drawn at least once / items listed
    results_on_time: Ratio | None = None  # results published within the limit / results due
    follow_up_completed: Ratio | None = None  # problems with completed follow-up / problems found
    joint_share: Ratio | None = None  # joint tasks with two or more departments / all joint tasks
    reduction_rate: Ratio | None = None  # visits saved by fusion / objects drawn


class ResultsPolicy(_Strict):
    """How the plan's inspection results are published (issue 22); a key left out: the setting
    (transforms/settings.py), and the results flow's parameter wins over both."""

    review_required: bool | None = None  # only approved (审核通过) results reach the public notice
    # years a result stays on the public notice, from its first publication, per entity type
    public_years: dict[Literal["enterprise", "individual", "cooperative", "other"], Annotated[int, Field(ge=0)]] = {}


class Plan(_Strict):
    plan_id: SafeId
    title: str = ""
    period: Period
    seed: str | None = None
    seed_sources: list[str] = []
    # "public": the draw runs only on public numbers (RFC 3797) announced after the commitment
    seed_policy: Literal["any", "public"] = "any"
    seed_announced_at: dt.datetime | None = None  # when the public numbers are (to be) announced, with its UTC offset
    quarantine_threshold: Annotated[float, Field(ge=0, le=1)] = settings.QUARANTINE_THRESHOLD
    exclusion_window_days: Annotated[int, Field(ge=0)] = 0
    yearly_caps: dict[CreditClass, Annotated[int, Field(ge=0)]] = {}
    visit_caps: VisitCaps | None = None  # caps over every kind of inspection the departments submit
    # a joint task's team (SPEC §4.6): this many inspectors from every department in it, and at
    # least two (Administrative Penalty Law art. 42) from the lead department
    inspectors_per_department: Annotated[int, Field(ge=1)] = 1
    daily_cap: Annotated[int, Field(ge=1)] = 4  # visits one inspector makes on one working day, at most
    assign: AssignRules = AssignRules()
    # the policy every ratio task keeps (checked when the plan is read): per class the band its ratio lies in,
    # and whether every ratio task must draw from every class
    policy_bands: dict[CreditClass, PolicyBand] = {}
    no_zero_class: bool = False
    kpi_targets: KpiTargets | None = None  # the year's targets for the yearly figures (jointdraw kpi)
    results: ResultsPolicy | None = None  # issue 22: review and the public period of the plan's results
    tasks: list[Task] = Field(min_length=1)

    @model_validator(mode="after")
    def _public_seed_has_a_date(self) -> Plan:
        if self.seed_policy == "public" and (self.seed_announced_at is None or self.seed_announced_at.tzinfo is None):
            raise ValueError(
                "seed_policy public needs seed_announced_at: when the public numbers are announced, with its UTC "
                "offset (e.g. 2026-03-01T21:30:00+08:00)"
            )
        return self

    @model_validator(mode="after")
    def _within_policy(self) -> Plan:
        problems = policy_problems(self.tasks, self.policy_bands, self.no_zero_class)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _unique_task_ids(self) -> Plan:
        seen: set[str] = set()
        for t in self.tasks:
            if t.task_id in seen:
                raise ValueError(f"task id {t.task_id} appears twice")
            seen.add(t.task_id)
        return self


class PlanError(ValueError):
    """A plan file that cannot be used; the message names the file and what to fix."""


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a plan never needs them, and nested aliases expand
    into billions of nodes (a "billion laughs" file) long before anything could check them."""

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.YAMLError(
                f"aliases (*name) are not accepted in a plan (line {mark.line + 1}); write the values out"
            )
        return super().compose_node(parent, index)


SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_safe_id(value: str, what: str) -> str:
    """`value` if it can name a folder under the output root (letters, digits, `_ . -`, not
    starting with a dot or a dash, at most 64): a plan or run id with `..`, `/`, a leading dash or
    other characters cannot write outside it."""
    if not isinstance(value, str) or not SAFE_ID.match(value):
        raise PlanError(f"{what} {value!r} is not accepted: use letters, digits, '_', '.', '-' (not first), at most 64")
    return value


def _said(error: dict) -> str:
    """One validation error as `key.path: message`; a rule about the whole plan (tasks and their policy) as its
    own words, which name the task and class (no pydantic "Value error, " before them)."""
    cause = error.get("ctx", {}).get("error") if error["type"] == "value_error" else None
    message = str(cause) if cause is not None else error["msg"]
    return f"{'.'.join(str(p) for p in error['loc'])}: {message}" if error["loc"] else message


def read_plan(path: Path) -> Plan:
    """The plan in `path`, checked; raises PlanError with every problem found."""
    try:
        data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_NoAliasLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise PlanError(f"plan {path}: cannot be read as UTF-8 YAML: {e}") from None
    if not isinstance(data, dict):
        raise PlanError(f"plan {path}: expected a mapping of plan keys at the top level")
    try:
        return Plan.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(_said(err) for err in e.errors())
        raise PlanError(f"plan {path}: {problems}") from None


def plan_as_yaml(plan: Plan) -> str:
    """The plan as YAML text, keys in model order (what the generator writes and publish copies)."""
    return yaml.safe_dump(plan.model_dump(mode="json", exclude_none=True), allow_unicode=True, sort_keys=False)


class UnlistedItem(NamedTuple):
    department: str
    task_id: str
    item_id: str
    listed_by: str | None  # the department whose list has it instead, if any


def unlisted_items(tasks: list[Task], items: pl.DataFrame) -> list[UnlistedItem]:
    """The one home of 一单 (no item outside the list): every item one of `tasks` names that its department's
    item list (`items`: item_id, department) does not have — the commit stage's check against the
    validated items, and the plan check's against the inbox before anything runs."""
    owner = dict(items.select("item_id", "department").iter_rows())
    return [
        UnlistedItem(t.department, t.task_id, item, owner.get(item))
        for t in tasks
        for item in t.items
        if owner.get(item) != t.department
    ]


def plan_item_problems(plan: Plan, items: pl.DataFrame) -> list[str]:
    """`unlisted_items` as messages, one per task and item."""
    return [
        f"task {u.task_id} names item {u.item_id}, which no department's item list (items.*) has"
        if u.listed_by is None
        else f"task {u.task_id} of {u.department} names item {u.item_id}, which is {u.listed_by}'s item"
        for u in unlisted_items(plan.tasks, items)
    ]
