"""The draw (DuckDB SQL) on literal directories: strata, exactness, independence of order and
threads, fairness over many seeds, coordination, and a golden file."""

import csv
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jointdraw.transforms.commitment import EXCLUSIONS_SCHEMA
from jointdraw.transforms.draw import (
    ABOVE_ALL,
    draw_plan,
    keep_eligible_pairs,
    lowest_k,
    part_candidates,
    score_keys,
    task_scopes,
)
from jointdraw.transforms.plan import Period, Plan, Scope, Task
from jointdraw.transforms.score import score
from jointdraw.transforms.storage.reuse import in_scope_key
from jointdraw.transforms.uscc import USCC_CHARSET, complete_uscc

GOLDEN = Path(__file__).parent / "golden" / "draws.csv"


def _usccs(n: int) -> list[str]:
    # distinct valid-looking codes: 17 chars from a counter, check char appended
    return [complete_uscc("9144030" + "".join(USCC_CHARSET[(i // 31**j) % 31] for j in range(10))) for i in range(n)]


def _directory(n: int = 60) -> pl.DataFrame:
    codes = _usccs(n)
    classes = ["A"] * (n // 6) + ["B"] * (n // 2) + ["C"] * (n // 6) + ["D"] * (n - n // 6 * 2 - n // 2)
    return pl.DataFrame(
        {
            "entity_key": codes,
            "uscc": codes,
            "name": [f"企业{i}" for i in range(n)],
            "status": ["active"] * (n - 2) + ["deregistered"] * 2,  # the last two may never be drawn
            "credit_risk": classes,
            "industry_code": ["H62" if i % 2 else "F52" for i in range(n)],
            "entity_type": ["enterprise"] * n,
            "district_code": ["440305" if i % 3 else "440306" for i in range(n)],
            "tags": [["食品经营许可证"] if i % 5 == 0 else [] for i in range(n)],
            "departments": [["AMR", "HLT"] if i % 2 else ["AMR"] for i in range(n)],
            # every 4th a Hong Kong-invested company (6150), every 7th a branch (2130), the rest 1130; one blank type
            "registered_type_code": [
                None if i == 1 else "6150" if i % 4 == 0 else "2130" if i % 7 == 0 else "1130" for i in range(n)
            ],
            "foreign_invested": [None if i == 1 else i % 4 == 0 for i in range(n)],
            "branch": [None if i == 1 else (i % 7 == 0 and i % 4 != 0) for i in range(n)],
        }
    )


def _plan(tasks: list[Task]) -> Plan:
    import datetime as dt

    return Plan(plan_id="P", period=Period(start=dt.date(2026, 3, 1), end=dt.date(2026, 11, 30)), tasks=tasks)


AMR_RATIO = Task(task_id="AMR-1", department="AMR", items=["AMR-001"], ratio={"A": 0.1, "B": 0.2, "C": 0.5, "D": 1.0})
HLT_COUNT = Task(task_id="HLT-1", department="HLT", items=["HLT-001"], scope=Scope(industries=["H"]), count=7)


def _connection(directory, threads=None, exclusions=None):
    con = duckdb.connect(config={"threads": threads} if threads else {})
    con.register("directory", directory)
    con.register("exclusions", exclusions if exclusions is not None else pl.DataFrame(schema=EXCLUSIONS_SCHEMA))
    return con


def _draw(directory, plan, seed="s", threads=None, mode="planned", exclusions=None):
    return draw_plan(_connection(directory, threads, exclusions), plan, seed, score_keys(plan, mode))


def test_k_per_stratum_is_the_rule_and_the_lowest_scores_win():
    directory, plan = _directory(), _plan([AMR_RATIO, HLT_COUNT])
    draws, strata = _draw(directory, plan)
    amr = strata.filter(pl.col("task_id") == "AMR-1")
    # 58 active: A 10 → ceil(1.0)=1, B 30 → ceil(6)=6, C 10 → 5, D 8 (2 deregistered of 10) → 8
    assert dict(zip(amr["credit_risk"], amr["k"], strict=True)) == {"A": 1, "B": 6, "C": 5, "D": 8}
    assert dict(zip(amr["credit_risk"], amr["n"], strict=True)) == {"A": 10, "B": 30, "C": 10, "D": 8}
    # HLT lists the odd rows, all H62: 29 active; 7 split by largest remainder
    assert strata.filter(pl.col("task_id") == "HLT-1")["k"].sum() == 7
    assert (
        draws.group_by("task_id", "credit_risk")
        .len()
        .join(strata, on=["task_id", "credit_risk"])
        .filter(pl.col("len") != pl.col("k"))
        .is_empty()
    )
    # the winners are exactly the k lowest hashlib scores of each stratum
    for (task_id, cls), group in draws.group_by("task_id", "credit_risk"):
        eligible = directory.filter(
            (pl.col("status") == "active")
            & (pl.col("credit_risk") == cls)
            & pl.col("departments").list.contains(task_id.split("-")[0])
        )
        if task_id == "HLT-1":
            eligible = eligible.filter(pl.col("industry_code").str.starts_with("H"))
        lowest = sorted(eligible["uscc"], key=lambda u: (score("s", task_id, u), u))[: group.height]
        assert sorted(group["uscc"]) == sorted(lowest)
        assert all(s == score("s", task_id, u) for u, s in zip(group["uscc"], group["score"], strict=True))
    assert not set(draws["uscc"]) & set(directory.filter(pl.col("status") != "active")["uscc"])


def test_industry_prefixes_of_every_length_select_the_codes_that_start_with_them():
    """A section, a division, a group and a class (and a prefix another prefix covers) select exactly the objects
    whose industry code starts with one of them: the prefixes are matched per distinct code, not per object."""
    codes = ["H", "H62", "H621", "H6210", "H6290", "I6513", "I651", "C1311", "C131", "C13110", "F52", "F5211", None]
    directory = _directory(len(codes) * 4).with_columns(
        industry_code=pl.Series([codes[i % len(codes)] for i in range(len(codes) * 4)]),
        departments=pl.lit(["AMR"]),
        status=pl.lit("active"),
    )
    scopes = {
        "sections": ["H"],
        "covered": ["H", "H62"],
        "group-and-class": ["H621", "I6513", "C1311"],
        "division": ["F52"],
        "none-listed": ["C1312"],
    }
    plan = _plan(
        [
            Task(task_id=t, department="AMR", items=["AMR-001"], count=1, scope=Scope(industries=p))
            for t, p in scopes.items()
        ]
    )
    con = _connection(directory)
    keep_eligible_pairs(con, plan)
    pairs = con.sql("select task_id, uscc from eligible_pairs").pl()
    for task_id, prefixes in scopes.items():
        wanted = directory.filter(
            pl.any_horizontal(pl.col("industry_code").str.starts_with(p) for p in prefixes).fill_null(False)
        )["uscc"]
        assert sorted(pairs.filter(pl.col("task_id") == task_id)["uscc"]) == sorted(wanted), task_id
    assert pairs.filter(pl.col("task_id") == "sections").height == 5 * 4  # H, H62, H621, H6210, H6290


def test_the_result_depends_only_on_seed_and_eligible_sets():
    directory, plan = _directory(), _plan([AMR_RATIO, HLT_COUNT])
    one, _ = _draw(directory, plan, threads=1)
    two, _ = _draw(directory.sample(fraction=1.0, shuffle=True, seed=7), plan, threads=2)
    assert_frame_equal(one, two)
    other, _ = _draw(directory, plan, seed="another seed")
    assert set(other["uscc"]) != set(one["uscc"])


def test_exclusions_remove_objects_for_every_task_or_one():
    directory, plan = _directory(), _plan([AMR_RATIO])
    draws, _ = _draw(directory, plan)
    first = draws["uscc"][0]
    excluded = pl.DataFrame(
        {"uscc": [first], "task_id": [None], "reason": ["recently_inspected"], "source_run": ["r0"]},
        schema=EXCLUSIONS_SCHEMA,
    )
    again, strata = _draw(directory, plan, exclusions=excluded)
    assert first not in again["uscc"].to_list() and strata["n"].sum() == 57


def test_golden_draw():
    """A fixed directory, plan and seed give exactly these rows (tests/transforms/golden/draws.csv).
    If the algorithm changes on purpose, regenerate the file and say so in the commit."""
    draws, _ = _draw(_directory(), _plan([AMR_RATIO, HLT_COUNT]), seed="9319./2.5.8.10.12./9.18.26.34.41.45./")
    got = [[r["task_id"], r["credit_risk"], r["uscc"], str(r["score"])] for r in draws.iter_rows(named=True)]
    with open(GOLDEN, encoding="utf-8") as f:
        assert got == list(csv.reader(f))[1:]


# chi-square critical values at significance 0.001 (scipy.stats.chi2.ppf(0.999, df))
CHI2_999 = {59: 99.61, 29: 58.30}


def _inclusion_chi2(counts: dict[str, int], population: list[str], k: int, runs: int) -> float:
    expected = runs * k / len(population)
    return sum((counts.get(u, 0) - expected) ** 2 / expected for u in population)


@pytest.mark.parametrize("mode", ["independent", "coordinated"])
def test_every_object_is_drawn_with_probability_k_over_n(mode):
    """300 seeds; each of N=60 objects of one stratum should be drawn about 300·k/N times.
    A chi-square over the objects at significance 0.001 (df = N−1) rejects a biased draw.
    In coordinated mode two tasks share their scores: each must still be a simple random sample."""
    codes = _usccs(60)
    directory = _directory(60).with_columns(
        credit_risk=pl.lit("B"), status=pl.lit("active"), departments=pl.lit(["AMR"])
    )
    tasks = [
        Task(task_id=f"AMR-{i}", department="AMR", items=["I"], count=12, group="G" if mode == "coordinated" else None)
        for i in (1, 2)
    ]
    plan = _plan(tasks)
    counts: dict[str, dict[str, int]] = {"AMR-1": {}, "AMR-2": {}}
    overlap = 0
    con = _connection(directory)
    sizes = keep_eligible_pairs(con, plan)  # the same for every seed (and the pairs kept on `con`)
    for run in range(300):
        draws, _ = draw_plan(con, plan, f"seed-{run}", score_keys(plan, "planned"), sizes)
        for t in counts:
            for u in draws.filter(pl.col("task_id") == t)["uscc"]:
                counts[t][u] = counts[t].get(u, 0) + 1
        overlap += draws.group_by("uscc").len().filter(pl.col("len") == 2).height
    for t in counts:
        assert _inclusion_chi2(counts[t], codes, 12, 300) < CHI2_999[59], t
    # independent: about 12·12/60 = 2.4 shared objects per draw; coordinated: all 12
    assert (overlap / 300 == 12) if mode == "coordinated" else (1.5 < overlap / 300 < 3.5)


def test_an_entity_without_a_uscc_is_drawn_by_its_entity_key_and_verify_agrees():
    # SPEC §4.4: an entity known only by its organisation code or registration number is scored on its
    # entity key (ORG:… / REG:…) in the USCC's place. With a ratio of 1 every eligible entity is drawn.
    from jointdraw.transforms.verify import eligible_pairs, expected_draws

    directory = _directory(12).with_columns(
        entity_key=pl.Series(["ORG:12345678X", "REG:440301000000000"] + _usccs(12)[2:]),
        uscc=pl.Series([None, None] + _usccs(12)[2:]),
    )
    plan = _plan([Task(task_id="AMR-ALL", department="AMR", items=["AMR-001"], ratio=dict.fromkeys("ABCD", 1.0))])
    draws, _ = _draw(directory, plan)
    drawn = dict(zip(draws["uscc"], draws["score"], strict=True))
    assert {"ORG:12345678X", "REG:440301000000000"} <= set(drawn)
    assert drawn["ORG:12345678X"] == score("s", "AMR-ALL", "ORG:12345678X")
    pairs = eligible_pairs(directory, pl.DataFrame(schema=EXCLUSIONS_SCHEMA), plan)
    expected = expected_draws(pairs, plan, "s", score_keys(plan, "planned"))
    assert sorted(expected["uscc"]) == sorted(draws["uscc"])


@pytest.mark.parametrize(
    "scope, wanted",
    [
        (Scope(foreign_invested=True), lambda i: i % 4 == 0),
        (Scope(branch=True), lambda i: i % 7 == 0 and i % 4 != 0),
        (Scope(branch=False), lambda i: i != 1 and not (i % 7 == 0 and i % 4 != 0)),  # a blank type is neither
        (
            Scope(registered_types=["有限责任公司（台港澳法人独资）", "2130"]),
            lambda i: i != 1 and (i % 4 == 0 or i % 7 == 0),
        ),
    ],
)
def test_a_scope_can_name_registered_types_and_verify_agrees(scope, wanted):
    from jointdraw.transforms.verify import eligible_pairs

    directory = _directory(60)
    plan = _plan(
        [Task(task_id="AMR-T", department="AMR", items=["AMR-001"], scope=scope, ratio=dict.fromkeys("ABCD", 1.0))]
    )
    draws, _ = _draw(directory, plan)
    active = [
        u
        for i, (u, s) in enumerate(zip(directory["uscc"], directory["status"], strict=True))
        if s == "active" and wanted(i)
    ]
    assert sorted(draws["uscc"]) == sorted(active)
    assert sorted(eligible_pairs(directory, pl.DataFrame(schema=EXCLUSIONS_SCHEMA), plan)["uscc"]) == sorted(active)


def test_a_scope_naming_an_unknown_type_is_refused():
    with pytest.raises(ValueError, match="registered_types"):
        Scope(registered_types=["有限公司（不存在）"])


def test_a_stratum_its_threshold_left_short_is_drawn_again_without_one():
    """Step 4's rare second round (transforms/draw.py `lowest_k`): a stratum whose threshold let fewer than k of
    a part's objects through is asked again with no threshold, and the draw is the full ranking's."""
    con = duckdb.connect()
    usccs = _usccs(40)
    con.execute(
        "create temp table eligible_pairs as select 'T1' as task_id, uscc, 'B' as credit_risk from unnest($u) t(uscc)",
        {"u": usccs},
    )
    plan = _plan([Task(task_id="T1", department="AMR", items=["AMR-001"], count=5)])
    keys, seed = {"T1": "T1"}, "2021"
    asked: list[pl.DataFrame] = []

    def candidates(strata: pl.DataFrame) -> list[pl.DataFrame]:
        asked.append(strata)
        return [part_candidates(con, plan, seed, keys, strata)]

    strata = pl.DataFrame(
        {"task_id": ["T1"], "credit_risk": ["B"], "n": [40], "k": [5], "threshold_hex": ["0" * 16]}  # lets none by
    )
    draws = lowest_k(strata, candidates(strata), candidates)
    assert [s["threshold_hex"].to_list() for s in asked] == [["0" * 16], [ABOVE_ALL]]
    ranked = sorted(usccs, key=lambda u: (score(seed, "T1", u), u))
    assert draws["uscc"].to_list() == ranked[:5] and draws["k"].to_list() == [5] * 5


def test_in_scope_pairs_read_back_give_the_same_eligible_pairs_and_their_key_holds_only_the_scopes(tmp_path):
    """The in-scope pairs (before the exclusions) written by one draw and read back by a later one give the same
    eligible pairs under that later draw's exclusions; their file is sorted (the same pairs, the same bytes); their
    key (transforms/storage/reuse.py) holds the directory part (its number and bytes) and the tasks' departments
    and scopes, not the tasks' ratios."""
    directory, plan = _directory(), _plan([AMR_RATIO, HLT_COUNT])
    codes = directory["uscc"].to_list()
    excluded = pl.DataFrame(  # one entity for every task, another for HLT-1 only
        {"uscc": codes[3:5], "task_id": [None, "HLT-1"], "reason": ["recent", "cap"], "source_run": ["r", "r"]},
        schema=EXCLUSIONS_SCHEMA,
    )

    def kept(path=None, found=False):
        con = _connection(directory, exclusions=excluded)
        sizes = keep_eligible_pairs(con, plan, path, found)
        return sizes, con.sql("select * from eligible_pairs order by all").pl()

    direct = kept()
    written = kept(tmp_path / "in-scope.parquet")
    first = (tmp_path / "in-scope.parquet").read_bytes()
    kept(tmp_path / "in-scope.parquet")
    assert (tmp_path / "in-scope.parquet").read_bytes() == first
    scoped = pl.read_parquet(tmp_path / "in-scope.parquet")
    assert scoped.equals(scoped.sort("task_id", "uscc")) and codes[3] in scoped["uscc"].to_list()
    for other in (written, kept(tmp_path / "in-scope.parquet", found=True)):
        assert_frame_equal(other[0], direct[0])
        assert_frame_equal(other[1], direct[1])
    assert codes[3] not in direct[1]["uscc"].to_list()

    def key(tasks, number=0, part="a" * 64):
        return in_scope_key(number, part, task_scopes(_plan(tasks)).to_dicts())

    assert key([AMR_RATIO, HLT_COUNT]) == key([AMR_RATIO.model_copy(update={"ratio": {"A": 1.0}}), HLT_COUNT])
    assert key([AMR_RATIO, HLT_COUNT]) != key(
        [AMR_RATIO, HLT_COUNT.model_copy(update={"scope": Scope(industries=["F"])})]
    )
    assert key([AMR_RATIO, HLT_COUNT]) != key([AMR_RATIO, HLT_COUNT.model_copy(update={"department": "AMR"})])
    assert key([AMR_RATIO, HLT_COUNT]) != key([AMR_RATIO, HLT_COUNT], part="b" * 64)  # another part's bytes
    assert key([AMR_RATIO, HLT_COUNT]) != key([AMR_RATIO, HLT_COUNT], number=1)  # the same bytes as another part
