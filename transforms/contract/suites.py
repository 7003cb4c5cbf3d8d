"""The data contract (SPEC §4.2): one Great Expectations suite per registry kind, defined here.

A `Rule` pairs an expectation with the quarantine reason a failing row gets; the order of
a kind's rules is the order reasons are given (a row that breaks two rules is quarantined
under the first, with every reason listed). File-level rules (required columns present,
at least one row) run on the file's raw columns and fail the department, not a row.

The suites run on Arrow-backed pandas frames (contract/frames.py `validation_frame`): the
columns the suite reads, lists joined with `;`, and derived columns — `identifier` (USCC,
else organization code, else registration number), `text_fits`, and the uniqueness keys
`row_digest` (a fingerprint of the whole row, to find duplicate rows in one column instead
of a compound key) and `<id>_in_file` — each column once per distinct value where its
verdict depends on the value alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import great_expectations.expectations as gxe
import pandas as pd
import polars as pl
from great_expectations.expectations.expectation import Expectation

from jointdraw.transforms.contract import expectations as jdx
from jointdraw.transforms.industry import industry_reasons, valid_industry_regex
from jointdraw.transforms.reference import code_names, department_names, district_codes
from jointdraw.transforms.registry import COLUMNS, ENUMS, REQUIRED, Kind
from jointdraw.transforms.results import CORRECTION_CHECKS, RESULT_CHECKS
from jointdraw.transforms.uscc import org_code_reasons, reg_no_reasons, uscc_reasons

MAX_TEXT = 2000  # characters in any one text value (a name, an address, findings); longer is a broken file


@dataclass(frozen=True)
class Rule:
    """An expectation and what a failing row is quarantined for."""

    expectation: Expectation
    reason: str  # a code of transforms/reasons.py
    column: str
    first_kept: tuple[str, ...] = ()  # uniqueness rules: the first row of each key stays
    reason_of: Callable[[pl.Series], pl.Series] | None = None  # the row's own reason, from its column's value


def rule_description(rule: Rule) -> str:
    """The rule in Chinese, with its standard and the quarantine reason a failing row gets (Data Docs)."""
    from jointdraw.transforms.reasons import RULE_TEXT_ZH

    if rule.reason in RULE_TEXT_ZH:
        return f"{RULE_TEXT_ZH[rule.reason].format(column=rule.column)}。不符合时隔离，原因代码 {rule.reason}。"
    # a file-level rule: its reason is the sentence the department is failed with
    what = f"文件须有 {rule.column} 列" if rule.column else "文件至少有一行数据"
    return f"{what}。不符合时该部门的文件不予接收：{rule.reason}。"


def _values(enum: str) -> list[str]:
    return sorted(set(ENUMS[enum].values()))


def _required(kind: Kind, skip: tuple[str, ...] = ()) -> list[Rule]:
    """Not-null rules for the kind's required columns; a date is checked on its text, so an
    unreadable date is `date_unparseable`, not `required_missing`."""
    return [
        Rule(
            gxe.ExpectColumnValuesToNotBeNull(column=f"{c}_text" if COLUMNS[kind][c] == "date" else c),
            "required_missing",
            c,
        )
        for c in REQUIRED[kind]
        if c not in skip
    ]


def _in_set(column: str, values: list[str], reason: str) -> Rule:
    return Rule(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=values), reason, column)


def _readable_date(column: str) -> Rule:
    return Rule(jdx.ExpectColumnValuesToBeReadableDates(column=f"{column}_text"), "date_unparseable", column)


def _duplicates(kind: Kind) -> Rule:
    return Rule(
        gxe.ExpectColumnValuesToBeUnique(column="row_digest"),
        "duplicate_row",
        "",
        first_kept=("source_file", *COLUMNS[kind]),
    )


def _text_length() -> Rule:
    """No text value longer than MAX_TEXT (`text_fits` is computed per row in `validation_frame`: a
    set check is vectorised in GX, a between check calls Python per row — 4 s on AMR's 5.8M rows)."""
    return Rule(gxe.ExpectColumnValuesToBeInSet(column="text_fits", value_set=[True]), "value_too_long", "")


def _unique_in_file(column: str) -> Rule:
    """An id may appear once per file (the same entity in two departments' files is fine)."""
    return Rule(
        gxe.ExpectColumnValuesToBeUnique(column=f"{column}_in_file"),
        "duplicate_id",
        column,
        first_kept=("source_file", column),
    )


def object_rules(run_date: dt.date) -> list[Rule]:
    """Objects (检查对象名录库). A missing USCC is allowed when an organization code or
    registration number identifies the entity (merge links it)."""
    return [
        _duplicates("objects"),
        _text_length(),
        Rule(gxe.ExpectColumnValuesToNotBeNull(column="identifier"), "required_missing", "uscc"),
        Rule(jdx.ExpectColumnValuesToBeValidUscc(column="uscc"), "uscc_check_char", "uscc", reason_of=uscc_reasons),
        Rule(
            jdx.ExpectColumnValuesToBeValidOrgCode(column="org_code"),
            "org_code_check",
            "org_code",
            reason_of=org_code_reasons,
        ),
        Rule(
            jdx.ExpectColumnValuesToBeValidRegNo(column="legacy_reg_no"),
            "reg_no_check",
            "legacy_reg_no",
            reason_of=reg_no_reasons,
        ),
        _unique_in_file("uscc"),
        *_required("objects", skip=("uscc",)),
        _in_set("entity_type", _values("entity_type"), "enum_unknown"),
        _in_set("district_code", district_codes(), "district_unknown"),
        # GB/T 4754-2017: a section, or its letter with one of its divisions' digits (the regex is built from the table)
        Rule(
            gxe.ExpectColumnValuesToMatchRegex(column="industry_code", regex=valid_industry_regex()),
            "industry_unknown",
            "industry_code",
            reason_of=industry_reasons,
        ),
        _readable_date("registered_on"),
        Rule(
            jdx.ExpectColumnValuesToBeDatesNotAfter(column="registered_on", latest=run_date.isoformat()),
            "date_implausible",
            "registered_on",
        ),
        _in_set("status", _values("object_status"), "enum_unknown"),
        _in_set("credit_risk", _values("credit_risk"), "enum_unknown"),
    ]


def inspector_rules(item_ids: list[str]) -> list[Rule]:
    """Inspectors (执法检查人员名录库). Expired certificates are valid data: the assign stage
    decides who may inspect."""
    return [
        _duplicates("inspectors"),
        _text_length(),
        *_required("inspectors"),
        _unique_in_file("inspector_id"),
        _in_set("department", sorted(department_names()), "department_unknown"),
        _in_set("district_code", district_codes(), "district_unknown"),
        _readable_date("cert_valid_until"),
        _in_set("status", _values("inspector_status"), "enum_unknown"),
        _in_set("role", _values("inspector_role"), "enum_unknown"),
        Rule(
            jdx.ExpectColumnListValuesToBeInSet(column="item_scope", value_set=sorted(item_ids)),
            "item_scope_unknown",
            "item_scope",
        ),
    ]


def item_rules() -> list[Rule]:
    """Items (抽查事项清单): ids unique per department file."""
    return [
        _duplicates("items"),
        _text_length(),
        *_required("items", skip=("scope",)),
        _unique_in_file("item_id"),
        _in_set("department", sorted(department_names()), "department_unknown"),
        _in_set("category", _values("item_category"), "enum_unknown"),
    ]


def inspection_rules(run_date: dt.date) -> list[Rule]:
    """Inspections (检查记录): every inspection of an entity this year, of any kind — what the plan's
    visit caps count. The entity is named by its USCC (no other identifier: a record the caps cannot
    attribute is of no use), the inspection is one that happened (not after the run date), its kind
    and level in the vocabularies (transforms/registry.py `ENUMS`)."""
    return [
        _duplicates("inspections"),  # the same inspection twice would count twice
        _text_length(),
        *_required("inspections"),
        Rule(jdx.ExpectColumnValuesToBeValidUscc(column="uscc"), "uscc_check_char", "uscc", reason_of=uscc_reasons),
        _in_set("department", sorted(department_names()), "department_unknown"),
        _readable_date("inspection_date"),
        Rule(
            jdx.ExpectColumnValuesToBeDatesNotAfter(column="inspection_date", latest=run_date.isoformat()),
            "date_implausible",
            "inspection_date",
        ),
        _in_set("inspection_kind", _values("inspection_kind"), "enum_unknown"),
        _in_set("level", _values("inspection_level"), "enum_unknown"),
    ]


def result_rules(kind: Kind = "results") -> list[Rule]:
    """Results (检查结果), and corrections (更正) of published ones: the vocabularies, then the checks
    against the plan that `transforms/results.with_result_checks` computed for each row (true =
    passes); a correction also names a published result and says what changes (or withdraws it).
    Review (issue 22): the state in its vocabulary, a reviewed row signed, a returned row explained
    (checks); the follow-up's completion a readable date, not before the inspection nor after today."""
    checks = {**RESULT_CHECKS, **(CORRECTION_CHECKS if kind == "corrections" else {})}
    return [
        _duplicates(kind),
        _text_length(),
        *_required(kind),
        _unique_in_file("result_key"),  # one answer (one correction) per joint task and item in a file
        _in_set("department", sorted(department_names()), "department_unknown"),
        _readable_date("inspection_date"),
        _in_set("method", sorted(code_names("inspection_methods")), "enum_unknown"),
        _in_set("follow_up", sorted(code_names("follow_up_actions")), "enum_unknown"),
        Rule(
            jdx.ExpectColumnListValuesToBeInSet(column="result_codes", value_set=sorted(code_names("result_codes"))),
            "result_code_unknown",
            "result_codes",
        ),
        _in_set("review_state", _values("review_state"), "enum_unknown"),
        _readable_date("follow_up_completed_on"),
        *([_in_set("action", _values("correction_action"), "enum_unknown")] if kind == "corrections" else []),
        *[
            Rule(gxe.ExpectColumnValuesToBeInSet(column=check, value_set=[True]), reason, column)
            for check, (reason, column) in checks.items()
        ],
    ]


def file_rules(kind: Kind) -> list[Rule]:
    """File-level rules, on the inventory of a kind's files (one row per file, see
    `file_inventory`): a file that breaks one fails its department."""
    return [
        *[
            Rule(
                gxe.ExpectColumnValuesToBeInSet(column=f"has_{c}", value_set=[True]),
                f"required column `{c}` is missing",
                c,
            )
            for c in REQUIRED[kind]
        ],
        Rule(gxe.ExpectColumnValuesToBeBetween(column="rows", min_value=1), "the file has no data rows", ""),
    ]


def file_inventory(raw_columns: dict[str, list[str]], rows: dict[str, int], kind: Kind) -> pd.DataFrame:
    """One row per file: `source_file`, `rows`, and `has_<column>` for each required column."""
    files = sorted(raw_columns)
    return pd.DataFrame(
        {
            "source_file": files,
            "rows": [rows[f] for f in files],
            **{f"has_{c}": [c in raw_columns[f] for f in files] for c in REQUIRED[kind]},
        }
    )
