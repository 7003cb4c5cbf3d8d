"""Industry codes as GB/T 4754-2017 (with its 2019 amendment) writes them (SPEC §3).

`data/reference/industries_gbt4754_2017.csv` holds the standard's 20 sections (门类), 97 divisions
(大类), 473 groups (中类) and 1,382 classes (小类) with their Chinese names. Registries write a
code as `I6513`, `6513`, `I65`, `65`, `[6513]`, `I 6513` or with its name (`6513 应用软件开发`):
every form is normalised to the section letter followed by the digits (`I6513`), the letter taken
from the division. A code whose division does not exist is `industry_unknown`; a letter that
contradicts its division (F6513) is kept as written and is `industry_section_mismatch`. A group or
class the 2017 table lacks (a GB/T 4754-2011 class such as 6510) is accepted under its division.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import polars as pl

from jointdraw.transforms.reference import reference_table

_CODE = re.compile(r"^(?P<letter>[A-Z])?(?P<digits>\d{2,4})?(?![\d])")
_BRACKETS = re.compile(r"[\[\]【】()（）\s]")


@cache
def industries() -> pl.DataFrame:
    """code, level (section/division/group/class), section, name_zh: the whole table."""
    return reference_table("industries_gbt4754_2017")


@cache
def division_sections() -> dict[str, str]:
    """Division (2 digits) → its section letter."""
    t = industries().filter(pl.col("level") == "division")
    return dict(zip(t["code"], t["section"], strict=True))


@cache
def industry_by_name() -> dict[str, str]:
    """Name (NFKC, without spaces or brackets) → normalised code, for names that say one code: where
    a name stands at several levels of one branch (教育: section P and division 83) the most specific."""
    candidates: dict[str, list[str]] = {}
    for code, section, name in industries().select("code", "section", "name_zh").iter_rows():
        key = _BRACKETS.sub("", unicodedata.normalize("NFKC", name)).upper()
        candidates.setdefault(key, []).append(section if code == section else section + code)
    out = {}
    for key, codes in candidates.items():
        longest = max(codes, key=len)
        if all(longest.startswith(c) for c in codes):
            out[key] = longest
    return out


def normalise_industry(text: str | None) -> str | None:
    """`I6513` from any of the forms registries write; the text (upper-case, without brackets and
    spaces) when it is no GB/T 4754 code, so validation quarantines it as written."""
    if text is None:
        return None
    key = _BRACKETS.sub("", unicodedata.normalize("NFKC", text)).upper()
    if not key:
        return None
    if key in industry_by_name():  # the name alone (软件和信息技术服务业)
        return industry_by_name()[key]
    m = _CODE.match(key)
    if not m or not (m["letter"] or m["digits"]):
        return key
    letter, digits = m["letter"], m["digits"] or ""
    if not digits:  # a section alone (H)
        return letter if letter <= "T" and key == letter else key
    section = division_sections().get(digits[:2])
    if section is None:
        return f"{letter or ''}{digits}"
    return f"{letter or section}{digits}"


def industry_column(values: pl.Series) -> pl.Series:
    """`normalise_industry` over a column, once per distinct value."""
    distinct = values.unique()
    mapping = pl.DataFrame(
        {"_v": distinct, "_code": [normalise_industry(v) for v in distinct]},
        schema={"_v": pl.String, "_code": pl.String},
    )
    return (
        values.to_frame("_v")
        .join(mapping, on="_v", how="left", nulls_equal=True, maintain_order="left")["_code"]
        .alias(values.name)
    )


@cache
def valid_industry_regex() -> str:
    """A normalised code is valid when it is a section, or a section letter with the digits of one of
    its divisions (and up to two more digits): the regex of all of them, from the table."""
    by_section: dict[str, list[str]] = {}
    for division, section in division_sections().items():
        by_section.setdefault(section, []).append(division)
    alternatives = [f"{s}(?:(?:{'|'.join(sorted(d))})\\d{{0,2}})?" for s, d in sorted(by_section.items())]
    return f"^(?:{'|'.join(alternatives)})$"


@cache
def _valid_industry() -> re.Pattern[str]:
    return re.compile(valid_industry_regex())


def is_valid_industry(code: str) -> bool:
    """Whether one normalised code is valid (`valid_industry_regex`): a plan's few scope codes are checked without
    a frame (83 scopes a plan at 2 ms each in polars)."""
    return _valid_industry().fullmatch(code) is not None


def industry_reasons(codes: pl.Series) -> pl.Series:
    """For each normalised code: null when valid, `industry_section_mismatch` when its letter is not
    its division's, else `industry_unknown`."""
    valid = codes.str.contains(valid_industry_regex())
    sections = division_sections()
    letter, division = codes.str.slice(0, 1), codes.str.slice(1, 2)
    known_division = codes.str.contains(r"^[A-T]\d{2,4}$") & division.is_in(list(sections))
    mismatch = known_division & (letter != division.replace_strict(sections, default=None))
    reason = pl.select(
        pl.when(valid)
        .then(None)
        .when(mismatch)
        .then(pl.lit("industry_section_mismatch"))
        .otherwise(pl.lit("industry_unknown"))
    ).to_series()
    return (
        reason.set(codes.is_null(), None).alias("industry_reason")
        if codes.null_count()
        else reason.alias("industry_reason")
    )


@cache
def _names_by_code() -> dict[str, str]:
    return dict(industries().select("code", "name_zh").iter_rows())


def industry_name(code: str) -> str | None:
    """The standard's name of a normalised code (I6513 → 应用软件开发), or None. Looked up in a dict: a plan
    notice names every task's scope codes (a filter of the table per code took 0.35 s of the demo city's commit)."""
    digits = code[1:] or code
    return _names_by_code().get(digits)
