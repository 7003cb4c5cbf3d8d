"""One object directory (一个库, SPEC §4.3) from every department's accepted objects, in DuckDB.

Keys (sql/merge_links.sql, merge_linked.sql). A record with a USCC is keyed by it. A record
without one is linked to the USCC of another department's record through its organization code
(= USCC positions 9–17) or its 15-digit registration number; one that links to nothing keeps its
own key (`ORG:…` or `REG:…`) and is reported as unlinked, never dropped.

Conflicts are resolved by these rules (sql/merge_directory.sql; README "Merge rules"):
* registration facts — name, entity type (category, and the type as registered with its code),
  registration date, status, industry, address,
  district, operator — come from the market regulator's record (AMR: it registers market
  entities); without one, from the record of the smallest department code;
* credit-risk class: the highest risk any department gives (D > C > B > A), as a precaution;
* tags: the union of every department's tags.
Every attribute on which an entity's records disagree goes to the conflicts table
(sql/merge_conflicts.sql) with each department's value and the value chosen.

Ranges of entity keys. The links are found once over all records (`key_records`); then every
rule above reads only the records of one entity, so the directory is merged one range of entity
keys at a time (`key_ranges`, `in_key_range`: each range's connection sees only its records,
filtered as they are read, and its slice of the records without a USCC), each range in memory of
its own size, on one machine one after the other or on a Dask cluster at once (`merge_into` on
each: flows/merge.py); the ranges' directories, in range order, are the directory sorted by
entity key. DuckDB runs each under a memory limit, spilling to disk past it.

Merged again (`merge_again`). For the same reason, when only some departments' files differ from an earlier
merge's, only the entities whose records may differ are merged (`affected_entities`, sql/merge_affected.sql:
the keys, before and now, of the changed departments' records, and both keys of a record without a USCC now
linked elsewhere); every other entity keeps the row and conflicts it had (`updated_directory`,
`merged_again`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from jointdraw.transforms import settings
from jointdraw.transforms.storage.packaged import sql_text
from jointdraw.transforms.storage.runfolder import ParquetFiles, parquet_paths

REGISTRATION_AUTHORITY = "AMR"
# What names an entity in everything drawn from the directory (draws, joint tasks, teams, results,
# history): its USCC or, without one, its entity key (ORG:<organisation code> / REG:<registration
# number>), which SPEC §4.4 scores in place of the USCC — so no eligible entity is undrawable.
DRAWN_ID = pl.col("entity_key").alias("uscc")
# …and an entity's USCC, in SQL: its entity key, but for an entity known without one (its key ORG:… / REG:…)
USCC_OF_ENTITY_KEY = "case when contains(entity_key, ':') then null else entity_key end"


def drawn_entities(directory: ParquetFiles, usccs: pl.Series, *columns: str) -> pl.DataFrame:
    """The directory's rows (uscc as `DRAWN_ID`, and `columns`) of the entities in `usccs`: a filter, not a semi
    join, so polars reads the other columns only for the rows it keeps (at 8M: 0.27 s instead of 0.9)."""
    return (
        pl.scan_parquet(parquet_paths(directory))
        .select(DRAWN_ID, *columns)
        .filter(pl.col("uscc").is_in(usccs.unique().implode()))
        .collect()
    )


# Full-width ASCII (U+FF01–FF5E) and the ideographic space fold to ASCII, as NFKC folds them.
FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
HALF_WIDTH = "".join(chr(c) for c in range(0x21, 0x7F)) + " "


# what an entity's directory row and conflicts are made of, of each of its records (not the codes that keyed them,
# nor the submitted text of dates)
RECORD_FACTS = (
    "name", "entity_type", "registered_type", "registered_type_code", "foreign_invested", "branch", "registered_on",
    "status", "industry_code", "address", "district_code", "operator_name", "phone", "credit_risk", "tags",
)  # fmt: skip
# what grouping and comparing the records of an entity listed several times read: its facts, and whose and where
SHARED_COLUMNS = (
    "entity_key", "precedence", "department_bit", "linked_by", "submitted_by", "source_line", *RECORD_FACTS,
)  # fmt: skip


@dataclass(frozen=True)
class Merged:
    """Row counts of what `merge_into` built, and the small tables people read."""

    records: int
    entities: int
    conflicts: pl.DataFrame
    unlinked: pl.DataFrame
    listed_by_several_departments: int
    entities_by_link: dict[str, int]  # how entities' records were linked: uscc, org_code, unlinked


def merge_connection(
    memory_limit: str = settings.MERGE_MEMORY_LIMIT, temp_directory: Path | None = None
) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(
        config={"memory_limit": memory_limit, **({"temp_directory": str(temp_directory)} if temp_directory else {})}
    )
    con.execute("set enable_progress_bar = false")
    con.execute(f"create macro uscc_of(entity_key) as {USCC_OF_ENTITY_KEY}")
    return con


# an entity's departments are gathered as the bits of one UHUGEINT (sql/merge_departments.sql)
MAX_DEPARTMENTS = 128


# what times the merge's steps (scripts/profile_merge.py): a context manager per step, by the step's name
StepTimer = Callable[[str], AbstractContextManager[object]]


def untimed(_step: str) -> AbstractContextManager[object]:
    return nullcontext()


def _quoted(text: str) -> str:
    """`text` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def order_departments(con: duckdb.DuckDBPyConnection) -> None:
    """From the view `records` (accepted objects), the temp table `departments`: their order and bits."""
    con.execute(sql_text("merge_departments"), {"authority": REGISTRATION_AUTHORITY})
    if (departments := con.execute("select count(*) from departments").fetchall()[0][0]) > MAX_DEPARTMENTS:
        raise ValueError(
            f"merge: {departments} departments submitted objects; the merge gathers at most {MAX_DEPARTMENTS} "
            "(transforms/merge.py MAX_DEPARTMENTS): merge fewer departments' files per plan"
        )


def key_records(con: duckdb.DuckDBPyConnection) -> None:
    """From the view `records` (accepted objects), the temp tables `departments` (`order_departments`) and
    `linked_without_uscc` (every record without a USCC, with the key it was linked to: sql/merge_links.sql),
    computed once over all records, and the view `linked` (every record with its entity key and how it was
    linked: sql/merge_linked.sql)."""
    order_departments(con)
    con.execute(sql_text("merge_links"))
    con.execute(f"create or replace temp view linked as {sql_text('merge_linked')}")


def key_ranges(con: duckdb.DuckDBPyConnection, ranges: int) -> list[str]:
    """The bounds that cut the entity keys into `ranges` ranges of about as many records each (fewer where keys
    repeat): quantiles of the USCCs of `records`, over a fixed 1/64 of them by hash, so the same records give
    the same bounds. Range i holds the keys from bound i − 1 (included) to bound i (excluded)."""
    if ranges <= 1:
        return []
    ((bounds,),) = con.execute(
        "select quantile_disc(uscc, $q) from records where uscc is not null and hash(uscc) % 64 = 0",
        {"q": [i / ranges for i in range(1, ranges)]},
    ).fetchall()
    return sorted(set(bounds or []))


def in_key_range(bounds: list[str], number: int, column: str) -> str:
    """SQL: `column` holds a key of range `number` (0, 1, …, len(bounds)) under `key_ranges`' bounds."""
    low = [f"{column} >= {_quoted(bounds[number - 1])}"] if number > 0 else []
    high = [f"{column} < {_quoted(bounds[number])}"] if number < len(bounds) else []
    return " and ".join(low + high) or "true"


def merge_into(con: duckdb.DuckDBPyConnection, step: StepTimer = untimed) -> Merged:
    """From the view `linked` (records with their entity key: every record, or one key range's), the table
    `linked_without_uscc` (the same range's) and the table `departments`: builds the view `keyed` (the records
    with their precedence and department bit), the temp tables `entity_sizes` (every key: its records and first
    precedence), `listed_several_times` (the keys of two records or more), `shared` (their records) and
    `grouped` (their directory rows), and the view `directory` (one row per entity, unordered: writers order by
    entity_key). Only the records of entities listed several times are copied; the others stream from the
    files to the directory's writer. The files are read three times: for the keys, for `shared`, and by the
    directory's writer."""
    con.execute(f"create or replace temp view keyed as {sql_text('merge_keyed')}")
    with step("entity sizes"):
        con.execute(
            "create or replace temp table entity_sizes as select entity_key, count(*) as n_records, "
            "min(precedence) as first_precedence from keyed group by 1"
        )
        con.execute(
            "create or replace temp table listed_several_times as "
            "select entity_key, first_precedence from entity_sizes where n_records > 1"
        )
    # the records of entities listed several times, the first in precedence order marked: grouped for
    # the directory, compared for conflicts
    with step("shared"):
        con.execute(
            f"create or replace temp table shared as select {', '.join(SHARED_COLUMNS)}, "
            "precedence = first_precedence as is_first from keyed join listed_several_times using (entity_key)"
        )
    with step("grouped"):
        con.execute(f"create or replace temp table grouped as {sql_text('merge_grouped')}")
    con.execute(f"create or replace temp view directory as {sql_text('merge_directory')}")
    with step("conflicts"):
        conflicts = con.sql(
            sql_text("merge_conflicts"),
            params={"full_width": FULL_WIDTH, "half_width": HALF_WIDTH, "authority": REGISTRATION_AUTHORITY},
        ).pl()
    # an entity is unlinked when its records link to no USCC: its key is its own (ORG:… / REG:…);
    # its name is its one record's, or the grouped row's
    with step("unlinked"):
        unlinked = con.sql("""
            select k.entity_key, coalesce(g.name, k.name) as name, k.submitted_by as department, k.source_file,
                k.source_line
            from linked_without_uscc k left join grouped g using (entity_key)
            where k.linked_by = 'unlinked'
            order by k.entity_key, k.submitted_by, k.source_line""").pl()

    def count(query: str) -> int:
        return con.execute(query).fetchall()[0][0]

    with step("counts"):
        records = count("select coalesce(sum(n_records), 0) from entity_sizes")
        # every record is linked once: those without a USCC as `linked_without_uscc` says, the others by it
        by_link = dict(con.execute("select linked_by, count(*) from linked_without_uscc group by 1").fetchall())
        by_link["uscc"] = records - sum(by_link.values())
        shared = count("select count(*) from shared")
        grouped = count("select count(*) from grouped")
        several = count("select count(*) from grouped where len(departments) > 1")
        # how entities' records were linked: an entity of one record by its record, the others by their lists
        for query, sign in (
            ("select linked_by, count(*) from shared group by 1", -1),
            ("select l, count(*) from (select unnest(linked_by) as l from grouped) group by l", 1),
        ):
            for kind, n in con.execute(query).fetchall():
                by_link[kind] = by_link.get(kind, 0) + sign * n
    entities = records - shared + grouped
    return Merged(records, entities, conflicts, unlinked, several, {k: n for k, n in sorted(by_link.items()) if n})


def merged_together(parts: list[Merged], conflicts: pl.DataFrame, unlinked: pl.DataFrame) -> Merged:
    """What one merge of every key gives, from its ranges' counts (`parts`, in key order) and their tables
    concatenated in key order (`conflicts`, `unlinked`)."""
    by_link: dict[str, int] = {}
    for part in parts:
        for kind, n in part.entities_by_link.items():
            by_link[kind] = by_link.get(kind, 0) + n
    return Merged(
        records=sum(p.records for p in parts),
        entities=sum(p.entities for p in parts),
        conflicts=conflicts,
        unlinked=unlinked,
        listed_by_several_departments=sum(p.listed_by_several_departments for p in parts),
        entities_by_link=dict(sorted(by_link.items())),
    )


def _without(table: pl.LazyFrame | pl.DataFrame, keys: pl.Series) -> pl.LazyFrame | pl.DataFrame:
    return table.filter(~pl.col("entity_key").is_in(keys.implode()))


def affected_entities(con: duckdb.DuckDBPyConnection, before: list[str], now: list[str], changed: list[str]) -> bool:
    """For merging again the accepted objects files `now` when only the files of the departments `changed` differ
    from those of an earlier merge (`before`): `key_records` on `now` (the view `records`), and the temp table
    `affected` (sql/merge_affected.sql): the entity keys whose records may differ. False (and nothing to rely on)
    when the two merges' departments differ: their order and bits would."""
    con.read_parquet(before).create_view("records", replace=True)
    key_records(con)
    con.execute("create or replace temp table departments_before as select * from departments")
    con.execute(
        "create or replace temp table links_before as select submitted_by, source_file, source_line, entity_key "
        "from linked_without_uscc"
    )
    con.read_parquet(before).create_view("records_before", replace=True)
    con.read_parquet(now).create_view("records", replace=True)
    key_records(con)
    differ = "select count(*) from ((from departments except from departments_before) union all "
    differ += "(from departments_before except from departments))"
    if con.execute(differ).fetchall() != [(0,)]:
        return False
    differing_records(con, changed)
    con.execute(sql_text("merge_affected"), {"changed": changed})
    return True


def differing_records(con: duckdb.DuckDBPyConnection, changed: list[str]) -> None:
    """The temp table `differing` (entity_key): the USCCs of the records of the departments `changed` that are not,
    in `records_before` and in `records`, the same record: the same department and USCC, and the same in every
    fact the merge takes from a record (`RECORD_FACTS`). A record's line is not compared: a department's file
    holds a USCC once (the contract keeps the first), so a record that moved within it keeps its place among its
    entity's records (other departments' come before or after it whatever its line), and the entity its row.
    Exact: the facts are compared, not a digest of them (AMR's 5.8M records at 8M: 7.7 s)."""
    facts = f"row({', '.join(RECORD_FACTS)}) as facts"
    side = "select submitted_by, uscc, {facts} from {records} "
    side += "where list_contains($changed, submitted_by) and uscc is not null"
    con.execute(
        f"""create or replace temp table differing as
        select coalesce(b.uscc, n.uscc) as entity_key
        from ({side.format(facts=facts, records="records_before")}) as b
        full join ({side.format(facts=facts, records="records")}) as n
            on b.submitted_by = n.submitted_by and b.uscc = n.uscc
        where b.facts is distinct from n.facts""",
        {"changed": changed},
    )


def merge_affected(con: duckdb.DuckDBPyConnection, records: list[str]) -> tuple[pl.DataFrame, Merged]:
    """After `affected_entities`: the directory rows of the affected entities (sorted by entity_key) and what
    `merge_into` gives of them, merged from their records only (of the accepted objects files `records`)."""
    paths = ", ".join(_quoted(p) for p in records)
    con.execute(  # few: read once, where `merge_into` reads them three times
        f"create or replace temp table affected_records as select * from read_parquet([{paths}]) "
        "where uscc in (select entity_key from affected)"
    )
    con.execute("create or replace temp view records as select * from affected_records")
    con.execute(
        "create or replace temp table affected_without_uscc as select * from linked_without_uscc "
        "where entity_key in (select entity_key from affected)"
    )
    con.execute("drop table linked_without_uscc")
    con.execute("alter table affected_without_uscc rename to linked_without_uscc")
    con.execute(f"create or replace temp view linked as {sql_text('merge_linked')}")
    merged = merge_into(con)
    return con.sql("select * from directory order by entity_key").pl(), merged


@dataclass(frozen=True)
class MergeAgain:
    """A merge done again from an earlier one (`merge_again`): the directory range by range (streams, in key order;
    None for a range none of whose entities was merged again: its rows are the earlier directory's file of the same
    number), the entities merged again and what `merge_into` gave of them, the unlinked records (entity_key,
    department, source_file, source_line), and the links and type conflicts of every record."""

    ranges: list[pl.LazyFrame | None]
    affected: pl.Series
    part: Merged
    unlinked_records: pl.DataFrame
    links: pl.DataFrame
    type_conflicts: pl.DataFrame


def merge_again(
    con: duckdb.DuckDBPyConnection,
    before: list[str],
    now: list[str],
    departments: list[str],
    earlier_directory: ParquetFiles,
    ranges: Callable[[int], int],
    most: int | None = None,
) -> MergeAgain | None:
    """The accepted objects files `now` merged from an earlier merge of `before` (the same files but those of
    `departments`), whose directory is `earlier_directory`: only the entities whose records may differ
    (`affected_entities`) are merged; the other rows are the earlier ones. The directory is cut where the earlier
    one was (`part_bounds`), so a range without an entity merged again is the earlier file as it is (None in
    `ranges`: linked, its SHA-256 and what later stages made of it kept); when the earlier one's cuts are not known,
    into `ranges(records)` key ranges (`key_ranges`). None when the departments differ, or when more than `most`
    entities would be merged again (then merge everything)."""
    if not affected_entities(con, before, now, departments):
        return None
    if most is not None and con.execute("select count(*) from affected").fetchall()[0][0] > most:
        return None
    earlier_cuts = part_bounds(earlier_directory)
    records = con.execute("select count(*) from records").fetchall()[0][0]
    bounds = key_ranges(con, ranges(records)) if earlier_cuts is None else earlier_cuts
    affected = con.sql("select entity_key from affected").pl()["entity_key"]
    unlinked = con.sql(
        "select entity_key, submitted_by as department, source_file, source_line from linked_without_uscc "
        "where linked_by = 'unlinked'"
    ).pl()
    links, type_conflicts = con.sql(links_query()).pl(), con.sql(type_conflicts_query()).pl()
    rows, part = merge_affected(con, now)
    in_range = [pl.sql_expr(in_key_range(bounds, n, "entity_key")) for n in range(len(bounds) + 1)]
    return MergeAgain(
        ranges=[
            None
            if earlier_cuts is not None and not affected.to_frame().filter(keys).height
            else updated_directory(earlier_directory, affected, rows, keys)
            for keys in in_range
        ],
        affected=affected,
        part=part,
        unlinked_records=unlinked,
        links=links,
        type_conflicts=type_conflicts,
    )


def part_bounds(directory: ParquetFiles) -> list[str] | None:
    """Where a directory written in key ranges (one file per range, sorted by entity_key) was cut: the first key of
    each file after the first (`in_key_range` bounds that give each file its rows). None when a file is empty."""
    firsts = [pl.scan_parquet(path).select("entity_key").head(1).collect() for path in parquet_paths(directory)[1:]]
    return None if any(first.is_empty() for first in firsts) else [first.item() for first in firsts]


def updated_directory(before: ParquetFiles, affected: pl.Series, rows: pl.DataFrame, keys: pl.Expr) -> pl.LazyFrame:
    """The earlier directory (sorted by entity_key) with the rows of the `affected` entities replaced by `rows`
    (theirs now, sorted by entity_key; an entity gone has none), of the entity `keys` (a range: only the earlier
    files' row groups of the range are read): streamed in order, never sorted again."""
    earlier = pl.scan_parquet(parquet_paths(before))
    schema = earlier.collect_schema()
    now = rows.lazy().select(schema.names()).cast(schema).filter(keys)
    return _without(earlier.filter(keys), affected).merge_sorted(now, key="entity_key")


def merged_again(
    directory: ParquetFiles,
    earlier_conflicts: pl.DataFrame,
    earlier_directory: ParquetFiles,
    affected: pl.Series,
    part: Merged,
    unlinked_records: pl.DataFrame,
) -> Merged:
    """What `merge_into` over every key gives, from a directory merged again (`directory`): the counts read from
    it; the conflicts, the earlier ones of the entities not `affected` and the affected ones' (`part`); the
    unlinked records (`unlinked_records`: entity_key, department, source_file, source_line), named as their
    entity (the affected ones' from `part`, the others' from `earlier_directory`)."""
    counts = (
        pl.scan_parquet(parquet_paths(directory))
        .select(
            entities=pl.len(),
            records=pl.col("n_records").sum(),
            several=(pl.col("departments").list.len() > 1).sum(),
        )
        .collect()
        .row(0, named=True)
    )
    by_link = (
        pl.scan_parquet(parquet_paths(directory)).select(pl.col("linked_by").explode()).group_by("linked_by").len()
    )
    conflicts = pl.concat([_without(earlier_conflicts, affected), part.conflicts]).sort("entity_key", "attribute")
    kept = _without(unlinked_records, affected)
    names = _without(pl.scan_parquet(parquet_paths(earlier_directory)), affected).filter(
        pl.col("entity_key").is_in(kept["entity_key"].unique().implode())
    )
    unlinked = pl.concat(
        [
            kept.join(names.select("entity_key", "name").collect(), on="entity_key", how="left").select(
                part.unlinked.columns
            ),
            part.unlinked,
        ]
    ).sort("entity_key", "department", "source_line")
    return Merged(
        records=counts["records"] or 0,
        entities=counts["entities"],
        conflicts=conflicts,
        unlinked=unlinked,
        listed_by_several_departments=counts["several"],
        entities_by_link={k: n for k, n in sorted(by_link.collect().iter_rows()) if n},
    )


def links_query() -> str:
    """Every record without a USCC: the key it was given and how (org_code, reg_no, unlinked)."""
    return (
        "select source_file, source_line, submitted_by as department, org_code, legacy_reg_no, entity_key, linked_by "
        "from linked_without_uscc order by source_file, source_line"
    )


def merge_frames(objects: pl.DataFrame) -> tuple[pl.DataFrame, Merged]:
    """The directory of literal object records, as a polars frame (for tests and small data)."""
    con = merge_connection()
    con.register("records", objects)
    key_records(con)
    merged = merge_into(con)
    return con.sql("select * from directory order by entity_key").pl(), merged


def type_conflicts_query() -> str:
    """Records whose registered type and USCC disagree on the entity's category (a 个体工商户 with a
    91… code): reported, not quarantined — the directory keeps the registered type."""
    return (
        "select source_file, source_line, submitted_by as department, uscc, name, registered_type, "
        "registered_type_code, entity_type, left(uscc, 2) as uscc_class from records where type_conflict "
        "order by source_file, source_line"
    )
