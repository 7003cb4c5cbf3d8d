"""Districts (区, GB/T 2260) as registries write them: `440305`, `南山区`, `深圳市南山区`,
`广东省深圳市南山区`, a former name (龙华新区) or a functional area (大鹏新区 → 龙岗区), and, where the
district column is blank, the district an address names.

The city's table is `data/reference/districts_shenzhen.csv` (code, name, aliases); another city
replaces it and nothing here changes. No address-parsing library is used: the only question is
which of this city's districts an address names, and the table's own names answer it (a general
parser such as cpca maps to the national table and would have to be told about functional areas
and former names anyway).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import polars as pl

from jointdraw.transforms.reference import reference_table

PREFIXES = re.compile(r"^(?:\S{2,}?省)?(?:\S{2,}?市)?")  # 广东省深圳市南山区 → 南山区


@cache
def district_names() -> dict[str, str]:
    """Every name, alias and code of the city's districts → its code."""
    out = {}
    for code, name, aliases in (
        reference_table("districts_shenzhen").select("district_code", "name_zh", "aliases").iter_rows()
    ):
        out[code] = code
        for n in [name, *(aliases or "").split(";")]:
            if n:
                out[n] = code
    return out


@cache
def _address_pattern() -> re.Pattern[str]:
    """The names an address can be trusted to mean a district by: those ending in 区 (南山区, 大鹏新区,
    前海深港合作区), longest first; a bare 南山 may be a road (南山大道) or a mountain."""
    names = sorted((n for n in district_names() if n.endswith("区")), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, names)))


def district_code_of(text: str | None) -> str | None:
    """The district code a value names; the value itself (normalised) when it names none."""
    if text is None:
        return None
    key = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).upper()
    if not key:
        return None
    names = district_names()
    return names.get(key) or names.get(PREFIXES.sub("", key)) or key


def district_in_address(address: str | None) -> str | None:
    """The one district an address names (None when it names none, or two different ones)."""
    if not address:
        return None
    codes = {district_names()[m] for m in _address_pattern().findall(unicodedata.normalize("NFKC", address))}
    return codes.pop() if len(codes) == 1 else None


def district_column(values: pl.Series, address: pl.Series | None = None) -> pl.Series:
    """District codes from a column as submitted (mapped once per distinct value), blanks filled
    from the address where it names one district."""
    distinct = values.unique()
    mapping = pl.DataFrame(
        {"_v": distinct, "_code": [district_code_of(v) for v in distinct]}, schema={"_v": pl.String, "_code": pl.String}
    )
    codes = values.to_frame("_v").join(mapping, on="_v", how="left", nulls_equal=True, maintain_order="left")["_code"]
    if address is not None and codes.null_count():
        blank = codes.is_null()
        found = address.filter(blank)
        distinct_addresses = found.unique()
        from_address = dict(zip(distinct_addresses, (district_in_address(a) for a in distinct_addresses), strict=True))
        codes = codes.scatter(blank.arg_true(), pl.Series([from_address.get(a) for a in found], dtype=pl.String))
    return codes.alias(values.name)
