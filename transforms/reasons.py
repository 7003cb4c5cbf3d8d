"""Reason codes for rows that a stage rejects or flags: the vocabulary shared by the
generator's truth file, validation's quarantine and the tests.

`accept` in a truth file means the planted oddity must be normalised and the row kept.
"""

from __future__ import annotations

from transforms.uscc import ORG_CODE_REASONS, REG_NO_REASONS, USCC_REASONS

ACCEPT = "accept"

ROW_REASONS: dict[str, str] = {
    **USCC_REASONS,
    **ORG_CODE_REASONS,
    **REG_NO_REASONS,
    "required_missing": "a required value is blank",
    "date_unparseable": "a date cannot be read (use YYYY-MM-DD)",
    "date_implausible": "a date is impossible here (a registration date in the future)",
    "department_unknown": "department code is not in data/reference/departments.csv",
    "item_scope_unknown": "an item in the inspector's item scope is not on the item list",
    "district_unknown": "district is not a code, name or alias in the district table (nor named by the address)",
    "industry_unknown": "industry code is not a GB/T 4754-2017 code: no such division (data/reference/industries_gbt4754_2017.csv)",
    "industry_section_mismatch": "industry code's section letter is not its division's (GB/T 4754-2017: 65 is in section I)",
    "enum_unknown": "value is not one of the allowed codes",
    "duplicate_row": "the same row appears earlier in the file",
    "duplicate_id": "the id appears earlier in the file",
    "value_too_long": "a text value is longer than 2,000 characters (a broken file or a pasted document?)",
    # results (SPEC §4.8), checked against the plan in the warehouse
    "result_code_unknown": "a result code is not in data/reference/result_codes.csv",
    "not_own_result": "a department may enter only its own results (谁检查、谁录入)",
    "task_unknown": "the joint task is not one of this plan's",
    "department_not_on_task": "the department is not on this joint task",
    "item_not_on_task": "the item is not one this department checks in this joint task",
    "inspector_not_on_team": "an inspector present was not on the team, and no substitution reason is given",
    "date_outside_period": "the inspection date is outside the plan's period",
    "date_in_future": "the inspection date is after the day the results are published",
    "codes_contradict": "未发现问题 (no problem) is combined with a problem code",
}
