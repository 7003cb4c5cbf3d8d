"""`jointdraw verify`: recompute a draw from its published files alone, by a path independent
of the draw stage's SQL — polars for the eligible sets, Python's hashlib for every score —
and report every difference.

A folder is either a published bundle (published/<plan_id>/, or its public/ and audit/ parts
alone) or a run folder (04_commit/, 05_draw/). For a bundle, also:
* every file against the manifest (public/manifest.json), hidden files too, and nothing unlisted;
* the seal: the manifest's SHA-256, printed, shown on the public pages, and compared with an
  announced value (`--seal`);
* every derived file re-derived and compared by content (transforms/rederive.py);
* the privacy scan of the public part (transforms/privacy.py);
* the log of draw attempts (audit/attempts.json): an unbroken chain whose last attempt is this draw;
* the results: bound to this draw's seal, rows only of its joint tasks and items, the results notice
  re-derived, their seal compared with `--results-seal`, and — where the bundle sits in its output
  root — with the warehouse's recorded results and the seals its audit log holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from jointdraw.transforms.audit import PUBLISH, RESULTS, attempts, chain_problems, draw_digest, last_seal, seed_shopping
from jointdraw.transforms.commitment import WITH_PRE, commitment
from jointdraw.transforms.documents.manifest import MANIFEST, RESULTS_MANIFEST, check_bundle
from jointdraw.transforms.documents.seal import SEAL_PAGES, page_with_empty_slot, seal_of
from jointdraw.transforms.draw import score_keys, strata_table
from jointdraw.transforms.merge import DRAWN_ID
from jointdraw.transforms.partition import partition_lowest_k
from jointdraw.transforms.plan import Plan, Scope, read_plan
from jointdraw.transforms.score import score
from jointdraw.transforms.storage.bundle import AUDIT, PRE, PUBLIC, REGULATOR, bundle_file, bundle_root, results_folder
from jointdraw.transforms.storage.runfolder import ParquetFiles, directory_parts, parquet_paths, stage_dir

FILES = ("directory.parquet", "exclusions.parquet", "plan.yaml", "commitment.json", "seed.json", "draws.parquet")
DRAW_FILES = ("seed.json", "draws.parquet")  # in a run folder, the draw stage's; the rest are the commit's


@dataclass
class Report:
    checked_tasks: int = 0
    checked_draws: int = 0
    eligible_pairs: int = 0
    checked_files: int = 0  # files whose SHA-256 was checked against the manifests
    derived_files: int = 0  # files re-derived from others and compared by content
    problems: list[str] = field(default_factory=list)
    attempts: int = 0  # logged draw attempts of the plan whose chain was checked (audit/attempts.json)
    redraws: int = 0  # replacement draws (递补) recomputed
    warnings: list[str] = field(default_factory=list)  # seed shopping: the bundle may be right, people must ask why
    notes: list[str] = field(default_factory=list)  # what was not checked, and why
    seal: str | None = None  # the draw's seal (SHA-256 of public/manifest.json)
    results_seal: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def text(self) -> str:
        head = (
            f"{'OK' if self.ok else 'DIFFERENCES'}: {self.checked_tasks} tasks, {self.eligible_pairs:,} eligible pairs "
            f"rescored, {self.checked_draws:,} draws recomputed"
            + (f", {self.checked_files} file hashes checked against the manifests" if self.checked_files else "")
            + (f", {self.derived_files} derived files re-derived" if self.derived_files else "")
            + (f", audit chain of {self.attempts} attempts checked" if self.attempts else "")
            + (f", {self.redraws} redraws recomputed" if self.redraws else "")
        )
        seals = ([f"seal (封存值) {self.seal}"] if self.seal else []) + (
            [f"results seal {self.results_seal}"] if self.results_seal else []
        )
        warnings = [f"WARNING: {w}" for w in self.warnings]
        return "\n".join(
            [
                *warnings,
                head,
                *seals,
                *[f"  note: {n}" for n in self.notes],
                *[f"  - {p}" for p in self.problems[:200]],
                *([f"  … and {len(self.problems) - 200} more"] if len(self.problems) > 200 else []),
            ]
        )


def _locate(folder: Path) -> dict[str, ParquetFiles]:
    """Where each of FILES is in a bundle or a run folder (a run's directory: its parts, in key order)."""
    if stage_dir(folder, "commit").is_dir():  # a run folder
        commit, draw = stage_dir(folder, "commit"), stage_dir(folder, "draw")
        return {
            f: directory_parts(commit) if f == "directory.parquet" else (draw if f in DRAW_FILES else commit) / f
            for f in FILES
        }
    return {f: bundle_file(folder, f) for f in FILES}


def _missing(files: dict[str, ParquetFiles]) -> list[str]:
    """The names of FILES that `_locate` did not find (a run's directory without any part among them)."""
    return [f for f, p in files.items() if not parquet_paths(p) or not all(Path(x).exists() for x in parquet_paths(p))]


def scope_conditions(scope: Scope | None) -> list[tuple[str, pl.Expr]]:
    """A task's 定向 filters as (what it asks, the condition on a directory row), in the independent
    recomputation's terms (polars, not the stage's SQL): what `eligible_pairs` applies and what
    `jointdraw verify --entity` names when an entity falls outside a scope."""
    if scope is None:
        return []
    s, out = scope, []
    if s.industries:
        out.append(
            (
                f"industry in {', '.join(s.industries[:6])}{' …' if len(s.industries) > 6 else ''}",
                pl.any_horizontal([pl.col("industry_code").str.starts_with(p) for p in s.industries]),
            )
        )
    if s.entity_types:
        out.append((f"entity type in {', '.join(s.entity_types)}", pl.col("entity_type").is_in(s.entity_types)))
    if s.districts:
        out.append((f"district in {', '.join(s.districts)}", pl.col("district_code").is_in(s.districts)))
    if s.tags:
        out.append((f"a tag of {', '.join(s.tags)}", pl.col("tags").list.eval(pl.element().is_in(s.tags)).list.any()))
    if s.registered_types:
        out.append(
            (
                f"registered type in {', '.join(s.registered_types)}",
                pl.col("registered_type_code").is_in(s.registered_types),
            )
        )
    if s.foreign_invested is not None:
        out.append(
            (f"foreign-invested {s.foreign_invested}", pl.col("foreign_invested").eq_missing(s.foreign_invested))
        )
    if s.branch is not None:
        out.append((f"branch {s.branch}", pl.col("branch").eq_missing(s.branch)))
    return out


def eligible_pairs(directory: pl.DataFrame, exclusions: pl.DataFrame, plan: Plan) -> pl.DataFrame:
    """(task_id, uscc, credit_risk) for every task: active objects its department lists, in its scope
    (industry prefixes, entity types, districts, tags), not excluded; an entity without a USCC is named
    by its entity key (ORG:… / REG:…), as the draw scores it."""
    objects = directory.with_columns(DRAWN_ID).filter(pl.col("status") == "active").explode("departments")
    everyone = exclusions.filter(pl.col("task_id").is_null()).select("uscc")
    parts = []
    for t in plan.tasks:
        df = objects.filter(pl.col("departments") == t.department)
        for _, condition in scope_conditions(t.scope):
            df = df.filter(condition)
        mine = exclusions.filter(pl.col("task_id") == t.task_id).select("uscc")
        df = df.join(everyone, on="uscc", how="anti").join(mine, on="uscc", how="anti")
        parts.append(df.select(pl.lit(t.task_id).alias("task_id"), "uscc", "credit_risk"))
    return (
        pl.concat(parts)
        if parts
        else pl.DataFrame(schema={"task_id": pl.String, "uscc": pl.String, "credit_risk": pl.String})
    )


def expected_draws(pairs: pl.DataFrame, plan: Plan, seed: str, keys: dict[str, str]) -> pl.DataFrame:
    """The k lowest scores per (task, class), recomputed with hashlib."""
    scored = pairs.with_columns(score_key=pl.col("task_id").replace_strict(keys, return_dtype=pl.String))
    scored = scored.with_columns(
        score=pl.Series(
            [score(seed, k, u) for k, u in zip(scored["score_key"], scored["uscc"], strict=True)], dtype=pl.UInt64
        )
    )
    # k from the one home of the stratum rule (strata.py, via draw.strata_table); the lowest k as per partition.py
    k_table = strata_table(
        plan, scored.group_by("task_id", "credit_risk").agg(n=pl.len()).sort("task_id", "credit_risk")
    )
    drawn = partition_lowest_k(scored, k_table)
    return drawn.join(k_table.select("task_id", "credit_risk", stratum_size="n", k="k"), on=["task_id", "credit_risk"])


def _check_audit(bundle: Path, draws: pl.DataFrame, report: Report) -> None:
    """The bundle's log of draw attempts (audit/attempts.json): an unbroken chain whose last attempt is
    this draw; and seed shopping (several seeds for one commitment) said out loud, with every attempt."""
    path = bundle_file(bundle, "attempts.json")
    if not path.is_file():
        report.problems.append(f"{AUDIT}/attempts.json is missing: no log of draw attempts to check")
        return
    entries = json.loads(path.read_text(encoding="utf-8")).get("entries", [])
    report.attempts = len(attempts(entries))
    report.problems += [f"audit: {p}" for p in chain_problems(entries)]
    tried = attempts(entries)
    if not tried or tried[-1]["draw_digest"] != draw_digest(draws):
        report.problems.append("audit: the published draw is not the last logged attempt of the plan")
    for committed, shopped in seed_shopping(entries).items():
        listed = "; ".join(
            f"#{e['seq']} {e['time']} run {e['run_id']} seed {e['seed']!r} → draw {e['draw_digest'][:16]}… "
            f"by {e['operator']}"
            for e in shopped
        )
        report.warnings.append(
            f"SEED SHOPPING? commitment {committed[:16]}… was drawn with {len({e['seed'] for e in shopped})} "
            f"different seeds: {listed}"
        )


def _check_seal(bundle: Path, announced: str | None, report: Report) -> None:
    """The seal is the manifest's SHA-256; the public pages show it; it is the one announced."""
    report.seal = seal_of(bundle / MANIFEST)
    for page in SEAL_PAGES:
        path = bundle_file(bundle, page)
        if path.is_file():
            shown, _ = page_with_empty_slot(path.read_text(encoding="utf-8"))
            if shown != report.seal:
                report.problems.append(
                    f"{PUBLIC}/{page} shows the seal {shown}, the manifest's SHA-256 is {report.seal}"
                )
    if announced and announced.strip().lower() != report.seal:
        report.problems.append(
            f"seal: this bundle's seal is {report.seal}, the announced seal is {announced.strip()}: "
            f"it is not the bundle that was announced"
        )


def _warehouse_of(bundle: Path) -> Path | None:
    """OUT/warehouse.duckdb when the bundle sits at OUT/published/<plan_id>."""
    from jointdraw.transforms.storage.layout import OutputRoot

    root = OutputRoot.of_bundle(bundle)
    return root.path if root and root.warehouse.is_file() else None


def _check_results(bundle: Path, plan_id: str, announced: str | None, report: Report) -> None:
    """The results published for this draw: bound to its seal, only its joint tasks and items, the
    results notice re-derived; against the warehouse's recorded results and logged seals when here."""
    from jointdraw.transforms.rederive import results_notice_problems

    manifest = json.loads((bundle / RESULTS_MANIFEST).read_text(encoding="utf-8"))
    report.results_seal = seal_of(bundle / RESULTS_MANIFEST)
    if manifest.get("draw_seal") != report.seal:
        report.problems.append(
            f"results: they answer the draw sealed {manifest.get('draw_seal')}, not this bundle's {report.seal}"
        )
    if announced and announced.strip().lower() != report.results_seal:
        report.problems.append(
            f"results seal: {report.results_seal}, the announced results seal is {announced.strip()}"
        )
    if not (bundle / REGULATOR).is_dir():
        report.notes.append(
            "the regulator's part is not here: the results rows and the results notice were not re-derived"
        )
        return
    results = pl.read_parquet(results_folder(bundle, REGULATOR) / "results.parquet")
    items_of = (
        pl.read_parquet(bundle_file(bundle, "joint_tasks.parquet"), columns=["joint_task_id", "item_ids"])
        .explode("item_ids")
        .rename({"item_ids": "item_id"})
    )
    strays = results.join(items_of, on=["joint_task_id", "item_id"], how="anti")
    report.problems += [
        f"results: {r['joint_task_id']} item {r['item_id']} is not an item of a joint task of this draw"
        for r in strays.head(20).iter_rows(named=True)
    ]
    report.problems += results_notice_problems(bundle)
    report.derived_files += 2
    out = _warehouse_of(bundle)
    if out is None:
        report.notes.append(
            "no warehouse beside the bundle: compare the results seal with the announced one (--results-seal)"
        )
        return
    from jointdraw.transforms.storage.warehouse import audit_entries, recorded_results

    recorded = recorded_results(out, plan_id).select(results.columns).cast(results.schema)
    key = ["joint_task_id", "department", "item_id"]
    if not recorded.sort(key).equals(results.sort(key)):
        report.problems.append(
            f"results: regulator/results/results.parquet ({results.height:,} rows) is not what the warehouse "
            f"recorded for {plan_id} ({recorded.height:,} rows)"
        )
    if (results_folder(bundle, REGULATOR) / "corrections.parquet").is_file():
        from jointdraw.transforms.storage.warehouse import recorded_corrections

        corrections = pl.read_parquet(results_folder(bundle, REGULATOR) / "corrections.parquet")
        kept = recorded_corrections(out, plan_id).select(corrections.columns).cast(corrections.schema)
        if not kept.sort("correction_id").equals(corrections.sort("correction_id")):
            report.problems.append(
                f"results: regulator/results/corrections.parquet ({corrections.height:,} rows) is not what the "
                f"warehouse recorded for {plan_id} ({kept.height:,} rows)"
            )
    logged = last_seal(audit_entries(out, plan_id), RESULTS)
    if logged != report.results_seal:
        report.problems.append(
            f"results: the audit log's last results seal is {logged}, these results' is {report.results_seal}"
        )


def verify_draw(folder: Path, seal: str | None = None, results_seal: str | None = None) -> Report:
    """Everything `jointdraw verify FOLDER [--seal S] [--results-seal R]` checks."""
    folder = Path(folder)
    if not stage_dir(folder, "commit").is_dir():
        folder = bundle_root(folder)
    files = _locate(folder)
    report = Report()
    if missing := _missing(files):
        report.problems.append(f"missing files in {folder}: {', '.join(missing)}")
        return report
    bundle = (folder / MANIFEST).is_file()
    if bundle:  # a published bundle: every file as the manifest lists it, and the seal
        check = check_bundle(folder)
        report.problems += check.problems
        report.checked_files = check.checked
        report.notes += [
            f"the {part} part is not here: its {n} files were not checked" for part, n in check.absent_parts.items()
        ]
        _check_seal(folder, seal, report)
        _check_audit(folder, pl.read_parquet(files["draws.parquet"]), report)
    committed = json.loads(files["commitment.json"].read_text(encoding="utf-8"))
    version = committed.get("version", "jointdraw-commitment-v1")
    pre = (
        bundle_file(folder, PRE) if bundle else files["plan.yaml"].parent / "pre"
    )  # the bundle's public/pre/, or 04_commit/pre/
    if version in WITH_PRE and not pre.is_dir():
        report.problems.append(f"{version} covers the publication before the draw, but {pre} is missing")
        return report
    recomputed = commitment(
        files["directory.parquet"],
        files["exclusions.parquet"],
        files["plan.yaml"],
        version,
        pre if version in WITH_PRE else None,
    )
    if version in WITH_PRE:
        report.problems += prepublication_problems(pre, read_plan(files["plan.yaml"]))
    for key in (
        "directory_sha256",
        "exclusions_sha256",
        "plan_sha256",
        *(["pre_sha256"] if version in WITH_PRE else []),
        "commitment",
    ):
        if recomputed[key] != committed.get(key):
            report.problems.append(f"commitment: {key} is {recomputed[key]}, published {committed.get(key)}")
    seed = json.loads(files["seed.json"].read_text(encoding="utf-8"))
    if seed.get("commitment") != committed.get("commitment"):
        report.problems.append("seed.json names another commitment than commitment.json")
    plan = read_plan(files["plan.yaml"])
    directory = pl.read_parquet(files["directory.parquet"])
    pairs = eligible_pairs(directory, pl.read_parquet(files["exclusions.parquet"]), plan)
    expected = expected_draws(pairs, plan, seed["seed"], score_keys(plan, "planned"))
    published = pl.read_parquet(files["draws.parquet"])
    report.checked_tasks, report.eligible_pairs, report.checked_draws = len(plan.tasks), pairs.height, expected.height
    key = ["task_id", "uscc"]
    for row in expected.join(published, on=key, how="anti").sort(key).iter_rows(named=True):
        report.problems.append(
            f"missing: task {row['task_id']} should draw {row['uscc']} "
            f"(class {row['credit_risk']}, score {row['score']})"
        )
    for row in published.join(expected, on=key, how="anti").sort(key).iter_rows(named=True):
        report.problems.append(f"extra: task {row['task_id']} drew {row['uscc']}, which is not among the lowest scores")
    both = published.join(expected, on=key, suffix="_expected")
    for col in ("score", "k", "stratum_size", "score_key", "credit_risk"):
        for row in both.filter(pl.col(col) != pl.col(f"{col}_expected")).sort(key).iter_rows(named=True):
            report.problems.append(
                f"wrong {col}: task {row['task_id']} {row['uscc']} has {row[col]}, expected {row[f'{col}_expected']}"
            )
    if bundle:
        report.problems += _strata_problems(
            pl.read_parquet(bundle_file(folder, "strata.parquet")), pairs, expected, plan
        )
        _check_derived(folder, plan, report)
        if bundle_file(folder, "team.parquet").is_file():
            _check_redraws(folder, plan, seed["seed"], report)
        if (folder / RESULTS_MANIFEST).is_file():
            _check_results(folder, plan.plan_id, results_seal, report)
        if (out := _warehouse_of(folder)) is not None:
            from jointdraw.transforms.storage.warehouse import audit_entries

            logged = last_seal(audit_entries(out, plan.plan_id), PUBLISH)
            if logged != report.seal:
                report.problems.append(
                    f"seal: the audit log's last publication of {plan.plan_id} is sealed {logged}, "
                    f"this bundle {report.seal}"
                )
    elif seal or results_seal:
        report.problems.append(f"{folder} is a run folder: only a published bundle has a seal")
    return report


def _check_redraws(bundle: Path, plan: Plan, seed: str, report: Report) -> None:
    """Every replacement draw (递补) the audit log records for this run, recomputed in order from the
    bundle (transforms/redraw.py), and redraws.parquet equal to the log's."""
    from jointdraw.transforms.redraw import Situation, redraw_problems, redraw_table, redraws_of, undo_redraws
    from jointdraw.transforms.workdays import working_days

    at = lambda name: bundle_file(bundle, name)  # noqa: E731
    run_id = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))["run_id"]
    entries = json.loads(at("attempts.json").read_text(encoding="utf-8")).get("entries", [])
    redraws = redraws_of(entries, run_id)
    if not pl.read_parquet(at("redraws.parquet")).equals(redraw_table(redraws)):
        report.problems.append(f"{REGULATOR}/redraws.parquet is not the redraws the audit log records")
    situation = Situation(
        plan=plan,
        seed=seed,
        joint_tasks=pl.read_parquet(at("joint_tasks.parquet")),
        team=undo_redraws(pl.read_parquet(at("team.parquet")), redraws),
        pool=pl.read_parquet(at("inspectors.parquet")),
        avoid=pl.read_parquet(at("avoid.parquet")),
        items=pl.read_parquet(at("items.parquet")),
        working_days=len(working_days(plan.period.start, plan.period.end).days),
    )
    report.problems += redraw_problems(situation, redraws)
    report.redraws = len(redraws)


def _check_derived(bundle: Path, plan: Plan, report: Report) -> None:
    from jointdraw.transforms.privacy import public_leaks
    from jointdraw.transforms.rederive import derived_problems

    problems, derived = derived_problems(bundle, plan)
    report.problems += problems
    report.derived_files += derived
    if not (bundle / REGULATOR).is_dir():
        report.notes.append("the regulator's part is not here: joint tasks and unassigned tasks were not re-derived")
    report.problems += [f"privacy: {PUBLIC}/{leak}" for leak in public_leaks(bundle / PUBLIC)]


def _strata_problems(published: pl.DataFrame, pairs: pl.DataFrame, expected: pl.DataFrame, plan: Plan) -> list[str]:
    """strata.parquet against the strata recomputed from the eligible pairs and the recomputed draws."""
    from jointdraw.transforms.entity_check import CUTOFF_COLUMNS, stratum_cutoffs

    sizes = pairs.group_by("task_id", "credit_risk").agg(n=pl.len()).sort("task_id", "credit_risk")
    strata = strata_table(plan, sizes).select("task_id", "credit_risk", "n", "k")
    recomputed = stratum_cutoffs(strata, expected, score_keys(plan, "planned"))
    if published.select(CUTOFF_COLUMNS).equals(recomputed):
        return []
    key = ["task_id", "credit_risk"]
    both = published.join(recomputed, on=key, how="full", suffix="_expected", coalesce=True)
    wrong = both.filter(
        pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}_expected")) for c in CUTOFF_COLUMNS if c not in key)
    )
    return [
        f"strata.parquet: task {r['task_id']} class {r['credit_risk']}: "
        f"published N {r['stratum_size']}, k {r['k']}, cut-off {r['cutoff_score']}; "
        f"recomputed {r['stratum_size_expected']}, {r['k_expected']}, {r['cutoff_score_expected']}"
        for r in wrong.sort(key).head(50).iter_rows(named=True)
    ] or ["strata.parquet: not the recomputed table"]


def check_entity(folder: Path, uscc: str) -> list[str]:
    """What `jointdraw verify --entity USCC FOLDER` prints: for every task of a department that lists the
    entity, eligible or not (and why), its score recomputed with hashlib, its stratum's cut-off, drawn
    or not. The cut-offs come from the bundle's strata.parquet, or (a run folder) from the draw stage."""
    from jointdraw.transforms.entity_check import entity_report, score_snippet, stratum_cutoffs

    folder = Path(folder) if (Path(folder) / "04_commit").is_dir() else bundle_root(Path(folder))
    files = _locate(folder)
    if missing := _missing(files):
        return [f"missing files in {folder}: {', '.join(missing)}"]
    plan = read_plan(files["plan.yaml"])
    seed = json.loads(files["seed.json"].read_text(encoding="utf-8"))["seed"]
    keys = score_keys(plan, "planned")
    draws = pl.read_parquet(files["draws.parquet"])
    published = bundle_file(bundle_root(Path(folder)), "strata.parquet")
    strata = files["draws.parquet"].parent / "strata.parquet"
    cutoffs = (
        pl.read_parquet(published) if published.exists() else stratum_cutoffs(pl.read_parquet(strata), draws, keys)
    )
    lines = entity_report(
        uscc.strip().upper(),
        pl.read_parquet(files["directory.parquet"]),
        pl.read_parquet(files["exclusions.parquet"]),
        plan,
        seed,
        keys,
        cutoffs,
        draws,
    )
    return [
        *lines,
        "",
        "The same score with standard Python (hashlib only), for one task:",
        "",
        score_snippet(seed, next(iter(keys.values()), ""), uscc.strip().upper()),
    ]


def prepublication_problems(pre: Path, plan: Plan) -> list[str]:
    """The publication before the draw against the plan: the plan notice re-derived from plan.yaml, and
    an item list that has every item the plan uses (its bytes are pinned by the commitment)."""
    from jointdraw.transforms.documents.people_headers import PRE_ITEMS, PRE_PLAN
    from jointdraw.transforms.documents.prepublication import plan_notice
    from jointdraw.transforms.storage.csvout import people_frame

    problems = []
    expected = people_frame(plan_notice(plan)).rename(PRE_PLAN)
    published = pl.read_csv(pre / "plan_notice.csv", infer_schema=False)
    if not published.equals(expected):
        problems.append("pre/plan_notice.csv is not the plan notice plan.yaml gives")
    listed = set(pl.read_csv(pre / "items.csv", infer_schema=False)[PRE_ITEMS["item_id"]])
    missing = sorted({i for t in plan.tasks for i in t.items} - listed)
    if missing:
        problems.append(f"pre/items.csv lacks items the plan uses: {', '.join(missing[:10])}")
    return problems
