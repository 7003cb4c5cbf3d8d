"""The generated city: deterministic, valid, realistic in the ways later stages rely on."""

import hashlib

import polars as pl

from jointdraw.transforms.plan import read_plan
from jointdraw.transforms.samplecity.city import generate_city
from jointdraw.transforms.samplecity.submission import write_city
from jointdraw.transforms.storage.registry_files import read_registry, scan_inbox
from jointdraw.transforms.uscc import uscc_reasons
from tests.conftest import CITY_SEED, SMALL_CITY_OBJECTS, plan_path


def _digests(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_arguments_give_byte_identical_files(tmp_path, dirty_city):
    # the session's dirty city was written earlier from the same arguments: every file must match
    write_city(generate_city(SMALL_CITY_OBJECTS, CITY_SEED), tmp_path, dirty=True, seed=CITY_SEED)
    assert _digests(tmp_path) == _digests(dirty_city)


def test_another_seed_gives_another_city(tmp_path, small_city):
    write_city(generate_city(SMALL_CITY_OBJECTS, CITY_SEED + 1), tmp_path, seed=CITY_SEED + 1)
    assert _digests(tmp_path)["inbox/AMR/objects.csv"] != _digests(small_city)["inbox/AMR/objects.csv"]


def _objects(city) -> pl.DataFrame:
    files = [f for f in scan_inbox(city / "inbox").files if f.kind == "objects"]
    return pl.concat([read_registry(f).frame.select("uscc", "source_file") for f in files])


def test_every_uscc_of_a_clean_city_is_valid_and_includes_a_n_y_and_ma_codes(small_city):
    objects = _objects(small_city)
    assert objects["uscc"].null_count() == 0
    assert uscc_reasons(objects["uscc"]).null_count() == objects.height
    first = set(objects["uscc"].str.slice(0, 1).unique())
    assert {"9", "A", "N", "Y"} <= first  # A, N, Y: bodies registered outside market regulation
    assert objects["uscc"].str.slice(8, 2).eq("MA").sum() > objects.height * 0.3  # post-2015 organization codes


def test_the_same_entity_is_listed_by_several_departments(small_city):
    per_entity = (
        _objects(small_city)
        .group_by("uscc")
        .agg(pl.col("source_file").str.split("/").list.first().n_unique().alias("n"))
    )
    assert per_entity.filter(pl.col("n") >= 2).height > 1000
    assert per_entity.filter(pl.col("n") >= 3).height > 50  # a restaurant: market regulation, health, fire


def test_departments_submit_in_mixed_formats_and_encodings(small_city):
    inbox = small_city / "inbox"
    assert len([p for p in inbox.iterdir() if p.is_dir()]) >= 8
    suffixes = {p.suffix for p in inbox.rglob("objects.*")}
    assert suffixes == {".csv", ".xlsx", ".parquet"}
    encodings = {read_registry(f).encoding for f in scan_inbox(inbox).files if f.path.suffix == ".csv"}
    assert encodings == {"utf-8", "utf-8-sig", "gb18030"}
    gbk_header = (inbox / "ENV" / "objects.csv").read_bytes().split(b"\n")[0].decode("gbk")
    assert gbk_header.startswith("统一社会信用代码,企业名称")


def test_items_inspectors_and_plan(small_city):
    files = scan_inbox(small_city / "inbox").files
    items = pl.concat([read_registry(f).frame for f in files if f.kind == "items"], how="diagonal")
    inspectors = pl.concat([read_registry(f).frame for f in files if f.kind == "inspectors"], how="diagonal")
    assert items.height == 580 and set(items["category"]) >= {"key", "重点"} and items["item_id"].n_unique() == 580
    assert inspectors.height >= 12 * 12  # at this size the floor of 12 per department decides
    assert inspectors["conflicts"].is_not_null().any()
    plan = read_plan(plan_path(small_city))
    kinds = {(t.scope is None, t.count is None) for t in plan.tasks}
    assert {(True, True), (False, True), (False, False)} <= kinds  # 不定向 ratio, 定向 ratio, 定向 count
    assert all(0 <= t.class_ratio(c).ratio <= 1 for t in plan.tasks if t.ratio for c in "ABCD")
    # the plan shows a floor (the market regulator's tasks draw at least 2 high-risk objects) and declares the
    # policy its tasks keep: read_plan has checked both (tests/transforms/test_plan.py)
    assert {t.class_ratio("D").min_count for t in plan.tasks if t.department == "AMR"} == {2}
    assert plan.no_zero_class and sorted(plan.policy_bands) == ["A", "B", "C", "D"]
    assert plan.policy_bands["A"].max <= plan.policy_bands["D"].max and plan.policy_bands["A"].min > 0


def test_dirty_truth_points_at_rows_that_break_the_rule_it_names(dirty_city):
    truth = pl.read_csv(dirty_city / "truth.csv", infer_schema=False).with_columns(pl.col("line").cast(pl.Int64))
    kinds = set(truth["kind"])
    assert {
        "bad_check_char",
        "bad_org_check",
        "uscc_missing_org_code",
        "duplicate_row",
        "bad_date",
        "unknown_district",
        "stray_spaces",
        "full_width",
        "blank_required",
        "duplicate_id",
        "bad_division",
        "wrong_section",
        "unknown_type",
        "unknown_status",
        "type_conflict",
        "code_guard",
        "district_from_address",
    } <= kinds
    files = {f.relative: f for f in scan_inbox(dirty_city / "inbox").files}
    raw = pl.concat(
        [
            read_registry(files[name]).frame.select("uscc", "source_file", "source_line")
            for name in truth["file"].unique()
            if name.split("/")[1].startswith("objects")
        ]
    )
    planted = truth.join(raw, left_on=["file", "line"], right_on=["source_file", "source_line"])
    for kind, reason in (("bad_check_char", "uscc_check_char"), ("bad_org_check", "uscc_org_check")):
        codes = planted.filter(pl.col("kind") == kind)["uscc"]
        assert codes.len() > 0 and uscc_reasons(codes).to_list() == [reason] * codes.len()
    assert planted.filter(pl.col("kind") == "uscc_missing_org_code")["uscc"].null_count() > 0


def test_inspectors_are_about_0_15_percent_of_the_object_count():
    import numpy as np

    from jointdraw.transforms.samplecity.city import list_entities, make_entities, make_inspectors, make_items

    rng = np.random.default_rng(1)
    listings = list_entities(rng, make_entities(rng, 20_000))
    inspectors = make_inspectors(rng, 4_000_000, make_items(), listings)  # the count scales with N, not the sample
    certified = sum(
        df.filter(pl.col("role") == "inspector").height if "role" in df.columns else df.height
        for df in inspectors.values()
    )
    assert abs(certified - 6_000) <= 12  # 0.15% of 4M, rounded per department; experts and third parties on top
    assert all(df["inspector_id"].is_unique().all() and df.height >= 12 for df in inspectors.values())


def test_the_city_speaks_the_registries_real_vocabulary(small_city):
    """Issue 16: registered types, each system's status words, districts as names, real GB/T 4754
    classes with and without the letter, the extra columns of real exports, titled exports."""
    from jointdraw.transforms.industry import industry_reasons, normalise_industry
    from jointdraw.transforms.normalise import normalise_registry
    from jointdraw.transforms.reference import reference_table

    files = {f.relative: f for f in scan_inbox(small_city / "inbox").files if f.kind == "objects"}
    raw = {name: read_registry(f) for name, f in files.items()}
    written = pl.concat(
        [r.frame.select("entity_type", "status", "district_code", "industry_code") for r in raw.values()]
    )
    types = set(reference_table("entity_types")["name_zh"])
    assert len(set(written["entity_type"]) & types) >= 20  # registered type names …
    assert {"1130", "9500"} <= set(written["entity_type"])  # … and type codes
    assert any("(" in t and "(1130)" not in t for t in written["entity_type"])  # half-width brackets
    assert {"存续（在营、开业、在册）", "在营（开业）企业", "开业", "在业", "吊销，未注销", "吊销,未注销"} <= set(
        written["status"]
    )
    assert {"南山区", "深圳市南山区", "广东省深圳市南山区", "440305"} <= set(written["district_code"])
    assert written["district_code"].null_count() > 0  # left blank: the address names the district
    industries = written["industry_code"].drop_nulls()
    assert industries.str.contains(r"^[A-T]\d{4}$").any() and industries.str.contains(r"^\d{4}$").any()
    assert industries.str.contains(r"^\[\d{4}\]$").any()
    normalised = pl.Series([normalise_industry(v) for v in industries.unique()])
    assert industry_reasons(normalised).null_count() == normalised.len()  # every one a real class of its section
    assert {"法定代表人", "注册资本", "登记机关", "经营范围", "核准日期"} <= set(
        raw["CUL/objects.csv"].unmapped_headers
    )
    assert raw["EMR/objects.xlsx"].header_line == 3 and raw["CUL/objects.csv"].skipped[-1].why == "note"
    typed = normalise_registry(raw["AMR/objects.csv"].frame, "objects", "AMR")
    assert not typed["type_conflict"].any()  # a clean city: every registered type fits its USCC
    assert set(typed["entity_type"]) == {"enterprise", "individual", "cooperative"}


def test_the_plans_targeted_tasks_name_real_divisions_and_groups(small_city):
    from jointdraw.transforms.industry import industries

    plan = read_plan(plan_path(small_city))
    codes = set(industries()["section"] + industries()["code"])
    scoped = [p for t in plan.tasks if t.scope for p in t.scope.industries]
    assert scoped and all(p in codes for p in scoped)
    assert any(len(p) == 3 for p in scoped) and any(len(p) == 4 for p in scoped)  # divisions (H62) and groups (F521)


def test_some_departments_report_their_inspections_and_the_plan_caps_visits(small_city):
    """Inspections are optional: four departments send them, in their own formats (GBK CSV, XLSX with a
    title, UTF-8 CSV, Parquet); the plan caps visits over every kind but complaints and referrals."""
    files = {f.relative for f in scan_inbox(small_city / "inbox").files if f.kind == "inspections"}
    assert files == {"AMR/inspections.csv", "EMR/inspections.xlsx", "ENV/inspections.csv", "FIR/inspections.parquet"}
    caps = read_plan(small_city / "plans" / "SZ-2026-ANNUAL.yaml").visit_caps
    assert caps is not None and caps.exempt_kinds == ["complaint", "referral"] and caps.total == 3


def test_a_city_made_in_chunks_is_valid_and_the_same_bytes_each_time(tmp_path, monkeypatch):
    """Issue 24: a city bigger than a chunk is made and written chunk by chunk. Here the small city's
    14,769 entities in chunks of 4,000 (4 chunks), dirty, with XLSX turned to CSV past 400 rows: EMR's
    file (about 650 rows) goes on as CSV from a later chunk, TRN's (about 300) stays one XLSX of several
    chunks. Every file reads back with the rows written, there are about as many object rows as asked,
    the USCCs of the rows without a planted error are valid and unique across chunks, the errors are on
    the lines truth.csv names in every chunk, and the same arguments give the same bytes."""
    from jointdraw.transforms.samplecity import submission

    monkeypatch.setattr(submission, "XLSX_MAX_ROWS", 400)
    city, again = tmp_path / "city", tmp_path / "again"
    _, written = submission.write_generated_city(SMALL_CITY_OBJECTS, CITY_SEED, city, dirty=True, chunk_entities=4_000)
    submission.write_generated_city(SMALL_CITY_OBJECTS, CITY_SEED, again, dirty=True, chunk_entities=4_000)
    assert _digests(city) == _digests(again)

    files = scan_inbox(city / "inbox").files
    raw = {f.relative: read_registry(f).frame for f in files}
    assert {name: frame.height for name, frame in raw.items()} == {
        w.path.relative_to(city / "inbox").as_posix(): w.rows for w in written
    }
    assert {"EMR/objects.csv", "TRN/objects.xlsx", "HLT/objects.parquet", "CUL/objects.csv"} <= set(raw)
    objects = pl.concat(
        raw[f.relative].select("uscc", "source_file", "source_line") for f in files if f.kind == "objects"
    )
    assert abs(objects.height - SMALL_CITY_OBJECTS) < 0.03 * SMALL_CITY_OBJECTS  # 19,7xx in one chunk too
    truth = pl.read_csv(city / "truth.csv", infer_schema=False).with_columns(pl.col("line").cast(pl.Int64))
    assert 0.005 < truth.filter(pl.col("file").str.contains("/objects")).height / objects.height < 0.015
    unplanted = objects.join(truth, left_on=["source_file", "source_line"], right_on=["file", "line"], how="anti")
    assert uscc_reasons(unplanted["uscc"]).null_count() == unplanted.height  # valid (and none missing)
    assert unplanted.group_by("source_file").agg(pl.col("uscc").is_unique().all())["uscc"].all()
    # the same city in memory has those codes, one entity each: an entity's registered date is the same in
    # every department's directory, and two entities of different chunks with one code would differ
    listed = pl.concat(
        df.select("uscc", "registered_on")
        for df in generate_city(SMALL_CITY_OBJECTS, CITY_SEED, chunk_entities=4_000).objects.values()
    )
    assert set(unplanted["uscc"]) <= set(listed["uscc"])
    assert listed.group_by("uscc").agg(pl.col("registered_on").n_unique())["registered_on"].max() == 1

    planted = truth.join(objects, left_on=["file", "line"], right_on=["source_file", "source_line"])
    for kind, reason in (("bad_check_char", "uscc_check_char"), ("bad_org_check", "uscc_org_check")):
        codes = planted.filter(pl.col("kind") == kind)["uscc"]
        assert codes.len() > 0 and uscc_reasons(codes).to_list() == [reason] * codes.len()
    amr = truth.filter(pl.col("file") == "AMR/objects.csv")["line"]
    assert amr.min() < 3_000 < 10_000 < amr.max()  # errors in the first chunk's rows and in the last's
