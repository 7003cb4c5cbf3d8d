"""One object directory (一个库, SPEC §4.3) from every department's accepted objects.

Keys. A record with a USCC is keyed by it. A record without one is linked to the USCC of
another department's record through its organization code (= USCC positions 9–17) or its
15-digit registration number; one that links to nothing keeps its own key (`ORG:…` or
`REG:…`) and is reported as unlinked, never dropped.

Conflicts are resolved by these rules (README "Merge rules"):
* registration facts — name, entity type, registration date, status, industry, address,
  district, operator — come from the market regulator's record (AMR: it registers market
  entities); without one, from the record of the smallest department code;
* credit-risk class: the highest risk any department gives (D > C > B > A), as a precaution;
* tags: the union of every department's tags.
Every attribute on which an entity's records disagree is written to the conflicts table
with each department's value and the value chosen. Names are compared after NFKC, so
`（深圳）` and `(深圳)` are not a conflict.
"""

from __future__ import annotations

import polars as pl

from transforms.uscc import org_code_of_uscc

REGISTRATION_AUTHORITY = "AMR"
FACTS = ("name", "entity_type", "registered_on", "status", "industry_code", "address", "district_code",
         "operator_name", "phone")
COMPARED = ("name", "entity_type", "registered_on", "status", "industry_code", "address", "district_code", "credit_risk")
CLASS_ORDER = {"A": 0, "B": 1, "C": 2, "D": 3}
RULES = {**{a: f"{REGISTRATION_AUTHORITY} record, else smallest department code" for a in FACTS},
         "credit_risk": "highest risk class (D > C > B > A)"}


def entity_keys(objects: pl.DataFrame) -> pl.DataFrame:
    """Adds `entity_key` and `linked_by` (uscc, org_code, reg_no or unlinked) to every record."""
    with_uscc = objects.filter(pl.col("uscc").is_not_null())
    by_org = with_uscc.group_by(org=org_code_of_uscc(pl.col("uscc"))).agg(org_uscc=pl.col("uscc").min())
    by_reg = with_uscc.filter(pl.col("legacy_reg_no").is_not_null()).group_by(reg=pl.col("legacy_reg_no")).agg(reg_uscc=pl.col("uscc").min())
    keyed = (
        objects.join(by_org, left_on="org_code", right_on="org", how="left", maintain_order="left")
        .join(by_reg, left_on="legacy_reg_no", right_on="reg", how="left", maintain_order="left")
    )
    return keyed.with_columns(
        entity_key=pl.coalesce("uscc", "org_uscc", "reg_uscc", pl.lit("ORG:") + pl.col("org_code"), pl.lit("REG:") + pl.col("legacy_reg_no")),
        linked_by=pl.when(pl.col("uscc").is_not_null()).then(pl.lit("uscc"))
        .when(pl.col("org_uscc").is_not_null()).then(pl.lit("org_code"))
        .when(pl.col("reg_uscc").is_not_null()).then(pl.lit("reg_no"))
        .otherwise(pl.lit("unlinked")),
    ).drop("org_uscc", "reg_uscc")


def _in_precedence(keyed: pl.DataFrame) -> pl.DataFrame:
    """Records in the order facts are taken: the registration authority first, then by department code."""
    return keyed.sort(pl.col("entity_key"), pl.col("submitted_by") != REGISTRATION_AUTHORITY, "submitted_by", "source_line")


def merge_directories(objects: pl.DataFrame) -> pl.DataFrame:
    """The directory: one row per entity, sorted by `entity_key`, with `departments` (who lists
    it), `n_records`, how it was linked, and `sources` (file:line of every record)."""
    ordered = _in_precedence(entity_keys(objects))
    highest_class = pl.col("credit_risk").replace_strict(CLASS_ORDER, default=None, return_dtype=pl.Int8)
    merged = ordered.group_by("entity_key", maintain_order=True).agg(
        **{c: pl.col(c).drop_nulls().first() for c in FACTS},
        credit_risk=pl.col("credit_risk").sort_by(highest_class, descending=True).first(),
        tags=pl.col("tags").list.explode(keep_nulls=False, empty_as_null=False).unique().sort(),
        departments=pl.col("submitted_by").unique().sort(),
        n_records=pl.len(),
        linked_by=pl.col("linked_by").unique().sort(),
        sources=pl.concat_str("source_file", pl.lit(":"), pl.col("source_line").cast(pl.String)),
    )
    # an unlinked record's key is ORG:… or REG:…, which no USCC can be (no ':' in the charset)
    uscc = pl.when(pl.col("entity_key").str.contains(":", literal=True)).then(None).otherwise(pl.col("entity_key"))
    return merged.select("entity_key", uscc.alias("uscc"), pl.exclude("entity_key"))


def conflicts(objects: pl.DataFrame, directory: pl.DataFrame) -> pl.DataFrame:
    """One row per (entity, attribute) on which its records disagree: each department's value
    (`DEPT=value`), the value chosen, and the rule that chose it."""
    keyed = entity_keys(objects)
    shared = keyed.filter(pl.col("entity_key").is_duplicated())
    compare = {a: (pl.col(a).cast(pl.String).str.normalize("NFKC") if a == "name" else pl.col(a).cast(pl.String)) for a in COMPARED}
    disagree = shared.group_by("entity_key").agg(**{a: e.drop_nulls().n_unique() for a, e in compare.items()})
    parts = []
    for a in COMPARED:
        keys = disagree.filter(pl.col(a) > 1).select("entity_key")
        if keys.is_empty():
            continue
        rows = shared.join(keys, on="entity_key", how="semi").sort("entity_key", "submitted_by", "source_line")
        values = rows.group_by("entity_key", maintain_order=True).agg(
            values=pl.concat_str("submitted_by", pl.lit("="), pl.col(a).cast(pl.String).fill_null("")))
        chosen = directory.select("entity_key", chosen=pl.col(a).cast(pl.String))
        parts.append(values.join(chosen, on="entity_key", how="left").with_columns(attribute=pl.lit(a), rule=pl.lit(RULES[a])))
    schema = {"entity_key": pl.String, "attribute": pl.String, "values": pl.List(pl.String), "chosen": pl.String, "rule": pl.String}
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat(parts).select(list(schema)).sort("entity_key", "attribute")
