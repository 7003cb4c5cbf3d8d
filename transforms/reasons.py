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
    "district_unknown": "district code is not in the code table",
    "industry_unknown": "industry code is not a GB/T 4754 section letter with up to 4 digits",
    "enum_unknown": "value is not one of the allowed codes",
    "duplicate_row": "the same row appears earlier in the file",
    "duplicate_id": "the id appears earlier in the file",
}
