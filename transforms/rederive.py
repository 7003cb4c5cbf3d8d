"""What `jointdraw verify` re-derives (issue 18): every file of a bundle that is made from others is
made again from them and compared by content, so a file edited together with its manifest entry
still shows.

    derived_problems(bundle, plan) -> (problems, files re-derived)

From the audit part (the draws, the directory) and the publication before the draw (the items):
the joint tasks (fusion), the public notice (CSV, XLSX, page), summary.json; the people's tables
(CSV, XLSX) of draws, joint tasks, unassigned and strata from their Parquet; the results notice
from the regulator's results. A table is compared cell by cell as text; a workbook's cells against
its CSV's (every sheet: a long table continues on sheets named …续1). An individual business's name
on the notice may have its operator's name masked (the directory does not carry the operator):
it must be the directory's name with some characters replaced by `*`.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from jointdraw.transforms.documents import people_headers
from jointdraw.transforms.documents.notice import INDIVIDUAL, NOTICE_COLUMNS, public_notice, render_notice_page
from jointdraw.transforms.documents.seal import page_with_empty_slot
from jointdraw.transforms.fusion_figures import fusion_summary
from jointdraw.transforms.joint_tasks import JOINT_TASK_COLUMNS, fuse_draws
from jointdraw.transforms.merge import DRAWN_ID
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.storage.bundle import PRE, PUBLIC, REGULATOR, bundle_file, results_folder
from jointdraw.transforms.storage.csvout import people_frame
from jointdraw.transforms.storage.xlsxout import read_workbook

SHOWN_ROWS = 5  # differences listed per file


def cell_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Cells as text people read them, the same whichever file they came from: empty is null, a date
    cell's midnight dropped, 3.0 is 3, a CSV's neutralising quote before = + - @ dropped."""

    def norm(c: pl.Expr) -> pl.Expr:
        c = c.cast(pl.String)
        c = c.str.replace(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", "$1").str.replace(r"^(-?\d+)\.0$", "$1")
        c = c.str.replace(r"^'([=+\-@\t\r])", "$1")
        return pl.when(c == "").then(None).otherwise(c)

    return frame.select(norm(pl.col(n)).alias(n) for n in frame.columns)


def _differences(name: str, published: pl.DataFrame, expected: pl.DataFrame) -> list[str]:
    if published.columns != expected.columns:
        return [f"{name}: columns {published.columns}, expected {expected.columns}"]
    if published.height != expected.height:
        return [f"{name}: {published.height:,} rows, expected {expected.height:,}"]
    a, b = cell_text(published), cell_text(expected)
    if a.equals(b):
        return []
    index = pl.int_range(pl.len()).alias("_row")
    differ = (
        a.with_columns(index)
        .join(b.with_columns(index), on="_row", suffix="_expected")
        .filter(pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}_expected")) for c in a.columns))
    )
    out = []
    for row in differ.head(SHOWN_ROWS).iter_rows(named=True):
        cols = [c for c in a.columns if row[c] != row[f"{c}_expected"]]
        out.append(
            f"{name} row {row['_row'] + 2}: "
            + "; ".join(f"{c} is {row[c]!r}, expected {row[c + '_expected']!r}" for c in cols)
        )
    return out + ([f"{name}: … {differ.height - SHOWN_ROWS} more rows differ"] if differ.height > SHOWN_ROWS else [])


def table_problems(csv_path: Path, expected: pl.DataFrame, headers: dict[str, str]) -> list[str]:
    """A people's table (the CSV and the XLSX beside it) against the frame it is made from."""
    if not csv_path.is_file():
        return [f"{csv_path.name}: missing"]
    wanted = people_frame(expected).rename({k: v for k, v in headers.items() if k in expected.columns})
    csv = pl.read_csv(csv_path, infer_schema=False)
    problems = _differences(csv_path.name, csv, wanted)
    xlsx = csv_path.with_suffix(".xlsx")
    if xlsx.is_file():
        problems += _differences(xlsx.name, read_workbook(xlsx), csv if not problems else wanted)
    else:
        problems.append(f"{xlsx.name}: missing")
    return problems


def _masked(published: str | None, name: str | None) -> bool:
    """`published` is `name` with some characters replaced by `*` (an operator's name masked)."""
    return (
        published is not None
        and name is not None
        and len(published) == len(name)
        and all(p == n or p == "*" for p, n in zip(published, name, strict=True))
    )


def notice_problems(
    notice_csv: Path, expected: pl.DataFrame, directory_names: pl.DataFrame
) -> tuple[list[str], pl.DataFrame]:
    """The notice against the one re-derived without operators' names: equal, but an individual
    business's name may be masked. Also returns the re-derived notice with the names as published
    (what the page must show)."""
    published = pl.read_csv(notice_csv, infer_schema=False)
    code, name = NOTICE_COLUMNS["joint_task_id"], NOTICE_COLUMNS["name"]
    wanted = people_frame(expected).rename(NOTICE_COLUMNS)
    if published.height == wanted.height and set(published.columns) == set(wanted.columns):
        # rows sort by name, and a masked name sorts elsewhere: compare by joint task, names apart
        both = published.join(wanted, on=code, how="left", suffix="_expected").join(
            directory_names, on=code, how="left"
        )
        masked = both.filter(pl.col(name).ne_missing(pl.col(f"{name}_expected")))
        bad = [
            r[code]
            for r in masked.iter_rows(named=True)
            if r["entity_type"] != INDIVIDUAL or not _masked(r[name], r["plain_name"])
        ]
        if bad:
            return [
                f"{notice_csv.name}: the entity name of {', '.join(bad[:SHOWN_ROWS])} is not the directory's"
            ], expected
        shown = masked.select(joint_task_id=code, _n=name)
        expected = (
            expected.join(shown, on="joint_task_id", how="left")
            .with_columns(pl.coalesce("_n", "name").alias("name"))
            .drop("_n")
            .sort(
                by=pl.col("joint_task_id").replace_strict(
                    dict(zip(published[code], range(published.height), strict=True)), default=None
                )
            )
        )
        fixed = (
            published.join(masked.select(code, pl.col(f"{name}_expected").alias("_n")), on=code, how="left")
            .with_columns(pl.coalesce("_n", name).alias(name))
            .drop("_n")
        )
        published = fixed.sort(
            by=pl.col(code).replace_strict(dict(zip(wanted[code], range(wanted.height), strict=True)), default=None)
        )
    problems = _differences(notice_csv.name, published.select(wanted.columns), wanted)
    xlsx = notice_csv.with_suffix(".xlsx")
    if xlsx.is_file():
        problems += _differences(xlsx.name, read_workbook(xlsx), pl.read_csv(notice_csv, infer_schema=False))
    return problems, expected


def published_items(pre: Path) -> pl.DataFrame:
    """(item_id, name, category) from the item list published before the draw."""
    h = people_headers.PRE_ITEMS
    return pl.read_csv(pre / "items.csv", infer_schema=False).select(
        item_id=h["item_id"], name=h["name"], category=pl.col(h["category"]).replace({"重点": "key", "一般": "general"})
    )


def derived_problems(bundle: Path, plan: Plan) -> tuple[list[str], int]:
    at = lambda name: bundle_file(bundle, name)  # noqa: E731
    problems, derived = [], 0
    draws = pl.read_parquet(at("draws.parquet"))
    drawn = (
        pl.scan_parquet(at("directory.parquet"))
        .with_columns(DRAWN_ID)  # only the entities drawn: a city's directory is large
        .join(draws.lazy().select("uscc").unique(), on="uscc", how="semi")
        .collect()
    )
    items = published_items(at(PRE))
    joint = fuse_draws(draws, items, drawn, plan.plan_id).joint_tasks
    notice = public_notice(joint, drawn.with_columns(operator_name=pl.lit(None, pl.String)), items, plan)
    names = drawn.select(
        pl.concat_str(pl.lit(plan.plan_id + "-"), "uscc").alias(NOTICE_COLUMNS["joint_task_id"]),
        plain_name="name",
        entity_type="entity_type",
    )
    found, shown = notice_problems(at("notice.csv"), notice, names)
    problems += [f"{PUBLIC}/{p}" for p in found]
    seed = json.loads(at("seed.json").read_text(encoding="utf-8"))
    page = render_notice_page(shown, plan, seed["seed"], seed.get("commitment", ""))
    if page_with_empty_slot(at("notice.html").read_text(encoding="utf-8"))[1] != page:
        problems.append(f"{PUBLIC}/notice.html: not the page notice.csv gives")
    summary = json.loads(at("summary.json").read_text(encoding="utf-8"))
    if summary != json.loads(json.dumps({"plan_id": plan.plan_id, **fusion_summary(draws, joint)})):
        problems.append(
            f"{PUBLIC}/summary.json: not the figures the draws give (fusion re-derived from audit/draws.parquet)"
        )
    problems += [
        f"{PUBLIC}/{p}"
        for p in table_problems(at("strata.csv"), pl.read_parquet(at("strata.parquet")), people_headers.STRATA)
    ]
    problems += [f"audit/{p}" for p in table_problems(at("draws.csv"), draws, people_headers.DRAWS)]
    derived += 7
    if (bundle / REGULATOR).is_dir():
        published = pl.read_parquet(at("joint_tasks.parquet"))
        fused = [c for c in published.columns if c in JOINT_TASK_COLUMNS]  # the team and the day are assign's
        if not published.select(fused).equals(joint.select(fused)):
            problems.append(f"{REGULATOR}/joint_tasks.parquet: not the joint tasks the draws give (fusion re-derived)")
        problems += [
            f"{REGULATOR}/{p}" for p in table_problems(at("joint_tasks.csv"), published, people_headers.JOINT_TASKS)
        ]
        from jointdraw.transforms.assign import unassigned_for_people

        unassigned = unassigned_for_people(pl.read_parquet(at("unassigned.parquet")), published)
        problems += [
            f"{REGULATOR}/{p}" for p in table_problems(at("unassigned.csv"), unassigned, people_headers.UNASSIGNED)
        ]
        derived += 5
        if at("team.parquet").is_file():
            problems += [f"{REGULATOR}/{p}" for p in team_problems(bundle, published)]
            derived += 5
    return problems, derived


def team_problems(bundle: Path, joint_tasks: pl.DataFrame) -> list[str]:
    """The team's and the redraws' people tables from their Parquet, and the joint tasks' inspector_ids
    from the team."""
    from jointdraw.transforms.assign import team_for_people, with_team
    from jointdraw.transforms.redraw import redraws_for_people

    at = lambda name: bundle_file(bundle, name)  # noqa: E731
    team = pl.read_parquet(at("team.parquet"))
    problems = table_problems(at("team.csv"), team_for_people(team), people_headers.TEAM)
    redraws = pl.read_parquet(at("redraws.parquet"))
    problems += table_problems(at("redraws.csv"), redraws_for_people(redraws), people_headers.REDRAWS)
    if not with_team(joint_tasks, team).equals(joint_tasks):
        problems.append("joint_tasks.parquet: its inspector_ids are not the members team.parquet lists")
    return problems


def results_notice_problems(bundle: Path) -> list[str]:
    """public/results/notice.* re-derived from regulator/results/results.parquet and the draw's notice, by
    the one rule of what is public (transforms/results.py `on_notice`: review, public period) with the
    rules and the day the results manifest gives; the regulator's tables of overdue follow-ups and of
    corrections from their Parquet, and the corrections against the results."""
    import datetime as dt

    from jointdraw.transforms.corrections import correction_problems
    from jointdraw.transforms.documents.manifest import RESULTS_MANIFEST
    from jointdraw.transforms.results import (
        RESULTS_NOTICE_HEADERS,
        ResultsRules,
        follow_up_overdue,
        notice_entities,
        on_notice,
        public_until,
        published_item_names,
        results_notice,
    )

    manifest = json.loads((bundle / RESULTS_MANIFEST).read_text(encoding="utf-8"))
    rules = ResultsRules.from_json({**manifest, **manifest.get("rules", {})})
    regulator = results_folder(bundle, REGULATOR)
    results = pl.read_parquet(regulator / "results.parquet")
    problems = []
    if "on_notice" in results.columns:  # results published since issue 22
        again = results.with_columns(public_until(rules.public_years)).with_columns(
            on_notice(rules, dt.date.fromisoformat(manifest["as_of"]))
        )
        for column in ("public_until", "on_notice"):
            if not again[column].equals(results[column]):
                problems.append(
                    f"{REGULATOR}/results/results.parquet: {column} is not what the results' rules give "
                    f"(review required: {rules.review_required}, public years: {rules.public_years})"
                )
        public = again.filter(pl.col("on_notice"))
        if (regulator / "follow_up_overdue.parquet").is_file():
            follow_up = follow_up_overdue(results)
            if not pl.read_parquet(regulator / "follow_up_overdue.parquet").equals(follow_up):
                problems.append(f"{REGULATOR}/results/follow_up_overdue.parquet: not the results' overdue follow-ups")
            problems += [
                f"{REGULATOR}/results/{p}"
                for p in table_problems(
                    regulator / "follow_up_overdue.csv", follow_up, people_headers.FOLLOW_UP_OVERDUE
                )
            ]
        if (regulator / "corrections.parquet").is_file():
            corrections = pl.read_parquet(regulator / "corrections.parquet")
            problems += [f"{REGULATOR}/results/{p}" for p in correction_problems(corrections, results)]
            problems += [
                f"{REGULATOR}/results/{p}"
                for p in table_problems(regulator / "corrections.csv", corrections, people_headers.CORRECTIONS)
            ]
    else:
        public = results
    expected = results_notice(
        public,
        notice_entities(bundle_file(bundle, "notice.csv")),
        published_item_names(bundle_file(bundle, PRE) / "items.csv"),
    )
    return problems + [
        f"{PUBLIC}/results/{p}"
        for p in table_problems(results_folder(bundle, PUBLIC) / "notice.csv", expected, RESULTS_NOTICE_HEADERS)
    ]
