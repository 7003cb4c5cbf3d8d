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

from dataclasses import dataclass

import polars as pl

from transforms.uscc import org_code_of_uscc

REGISTRATION_AUTHORITY = "AMR"
FACTS = ("name", "entity_type", "registered_on", "status", "industry_code", "address", "district_code",
         "operator_name", "phone")
COMPARED = ("name", "entity_type", "registered_on", "status", "industry_code", "address", "district_code", "credit_risk")
RULES = {**{a: f"{REGISTRATION_AUTHORITY} record, else smallest department code" for a in FACTS},
         "credit_risk": "highest risk class (D > C > B > A)"}


def entity_keys(objects: pl.DataFrame) -> pl.DataFrame:
    """Adds `entity_key` and `linked_by` (uscc, org_code, reg_no or unlinked) to every record."""
    missing = objects.filter(pl.col("uscc").is_null())
    links = missing.select("source_file", "source_line", "org_code", "legacy_reg_no")
    if not links.is_empty():
        with_uscc = objects.filter(pl.col("uscc").is_not_null())
        by_org = (with_uscc.select(org=org_code_of_uscc(pl.col("uscc")), uscc="uscc")
                  .join(links.select(org="org_code"), on="org", how="semi").group_by("org").agg(org_uscc=pl.col("uscc").min()))
        by_reg = (with_uscc.select(reg="legacy_reg_no", uscc="uscc").filter(pl.col("reg").is_not_null())
                  .join(links.select(reg="legacy_reg_no"), on="reg", how="semi").group_by("reg").agg(reg_uscc=pl.col("uscc").min()))
        links = (links.join(by_org, left_on="org_code", right_on="org", how="left")
                 .join(by_reg, left_on="legacy_reg_no", right_on="reg", how="left")
                 .select("source_file", "source_line",
                         link_key=pl.coalesce("org_uscc", "reg_uscc", pl.lit("ORG:") + pl.col("org_code"), pl.lit("REG:") + pl.col("legacy_reg_no")),
                         link_kind=pl.when(pl.col("org_uscc").is_not_null()).then(pl.lit("org_code"))
                         .when(pl.col("reg_uscc").is_not_null()).then(pl.lit("reg_no")).otherwise(pl.lit("unlinked"))))
        objects = objects.join(links, on=["source_file", "source_line"], how="left", maintain_order="left")
    else:
        objects = objects.with_columns(link_key=pl.lit(None, pl.String), link_kind=pl.lit(None, pl.String))
    return objects.with_columns(
        entity_key=pl.coalesce("uscc", "link_key"),
        linked_by=pl.when(pl.col("uscc").is_not_null()).then(pl.lit("uscc")).otherwise("link_kind"),
    ).drop("link_key", "link_kind")


def _in_precedence(keyed: pl.DataFrame) -> pl.DataFrame:
    """Records grouped by entity, in the order facts are taken within an entity: the
    registration authority first, then by department code, then by line."""
    prec = (pl.col("submitted_by") != REGISTRATION_AUTHORITY).cast(pl.Int8)
    return keyed.sort(pl.col("entity_key"), prec, "submitted_by", "source_line")


@dataclass(frozen=True)
class Merged:
    """The one object directory, the conflicts found making it, and which rows make each entity."""

    directory: pl.DataFrame
    conflicts: pl.DataFrame
    records: pl.DataFrame


def merge_directories(keyed: pl.DataFrame) -> Merged:
    """The directory from keyed records (`entity_keys`): one row per entity, sorted by
    `entity_key`, with `departments` (who lists it), `n_records` and `linked_by` (how its
    records were keyed). Entities with one record are taken as they are; only those listed
    several times are grouped; both halves stay in key order and are merged, not re-sorted."""
    used = ["entity_key", *FACTS, "credit_risk", "tags", "submitted_by", "source_file", "source_line", "linked_by"]
    ordered = _in_precedence(keyed.select(used))
    key = pl.col("entity_key")
    several = ordered.select((key == key.shift(1)).fill_null(False) | (key == key.shift(-1)).fill_null(False)).to_series()
    single = ordered.filter(~several).select(
        "entity_key", *FACTS, "credit_risk",
        tags=pl.col("tags").list.unique().list.sort(),
        departments=pl.concat_list("submitted_by"),
        n_records=pl.lit(1, pl.UInt32),
        linked_by=pl.concat_list("linked_by"),
    )
    shared = ordered.filter(several)
    grouped = shared.group_by("entity_key", maintain_order=True).agg(
        **{c: pl.col(c).drop_nulls().first() for c in FACTS},
        credit_risk=pl.col("credit_risk").max(),  # A < B < C < D: the highest risk
        tags=pl.col("tags").list.explode(keep_nulls=False, empty_as_null=False).unique().sort(),
        departments=pl.col("submitted_by").unique().sort(),
        n_records=pl.len(),
        linked_by=pl.col("linked_by").unique().sort(),
    )
    merged = single.merge_sorted(grouped.select(single.columns), key="entity_key")
    # an unlinked record's key is ORG:… or REG:…, which no USCC can be (no ':' in the charset)
    uscc = pl.when(key.str.contains(":", literal=True)).then(None).otherwise(key)
    records = ordered.select("entity_key", department="submitted_by", source_file="source_file", source_line="source_line",
                             linked_by="linked_by")
    return Merged(merged.select("entity_key", uscc.alias("uscc"), pl.exclude("entity_key")), _conflicts(shared, grouped), records)


def _conflicts(shared: pl.DataFrame, grouped: pl.DataFrame) -> pl.DataFrame:
    """One row per (entity, attribute) on which its records disagree: each department's value
    (`DEPT=value`, in precedence order), the value chosen, and the rule that chose it."""
    compare = {a: (pl.col(a).cast(pl.String).str.normalize("NFKC") if a == "name" else pl.col(a).cast(pl.String)) for a in COMPARED}
    disagree = shared.group_by("entity_key", maintain_order=True).agg(**{a: e.drop_nulls().n_unique() for a, e in compare.items()})
    parts = []
    for a in COMPARED:
        keys = disagree.filter(pl.col(a) > 1).select("entity_key")
        if keys.is_empty():
            continue
        values = shared.join(keys, on="entity_key", how="semi").group_by("entity_key", maintain_order=True).agg(
            values=pl.concat_str("submitted_by", pl.lit("="), pl.col(a).cast(pl.String).fill_null("")))
        chosen = grouped.join(keys, on="entity_key", how="semi").select("entity_key", chosen=pl.col(a).cast(pl.String))
        parts.append(values.join(chosen, on="entity_key", how="left").with_columns(attribute=pl.lit(a), rule=pl.lit(RULES[a])))
    schema = {"entity_key": pl.String, "attribute": pl.String, "values": pl.List(pl.String), "chosen": pl.String, "rule": pl.String}
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat(parts).select(list(schema)).sort("entity_key", "attribute")
