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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jointdraw.transforms import settings
from jointdraw.transforms.entity_types import parse_registered_type
from jointdraw.transforms.industry import industry_reasons, normalise_industry
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
        bad = [
            v for v, reason in zip(values, industry_reasons(pl.Series(codes, dtype=pl.String)), strict=True) if reason
        ]
        if bad:
            raise ValueError(
                f"scope industries {bad} are not GB/T 4754-2017 sections, divisions, groups or classes "
                "(data/reference/industries_gbt4754_2017.csv)"
            )
        return codes


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
    ratio: dict[CreditClass, Annotated[float, Field(ge=0, le=1)]] | None = None
    count: Annotated[int, Field(ge=0)] | None = None
    group: SafeId | None = None  # coordination group (SPEC §4.4)

    @model_validator(mode="after")
    def _ratio_or_count(self) -> Task:
        if (self.ratio is None) == (self.count is None):
            raise ValueError(f"task {self.task_id}: give exactly one of `ratio` (per credit class) or `count`")
        return self


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
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'plan'}: {err['msg']}" for err in e.errors())
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
