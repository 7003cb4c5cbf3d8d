"""Each rule of the data contract on literal rows, through a real Great Expectations validation."""

import datetime as dt
import json

import polars as pl
import pytest

from jointdraw.transforms.contract.frames import validation_frame
from jointdraw.transforms.contract.quarantine import accepted_rows, file_verdicts
from jointdraw.transforms.contract.suites import inspector_rules, item_rules, object_rules
from jointdraw.transforms.contract.validation import Contract
from jointdraw.transforms.normalise import normalise_registry, raw_to_keep
from jointdraw.transforms.uscc import complete_uscc

RUN_DATE = dt.date(2026, 11, 27)
VALID = "91350100M000100Y43"  # worked by hand in test_uscc.py
GOOD_OBJECT = {
    "uscc": VALID,
    "name": "深圳市华润贸易有限公司",
    "entity_type": "企业",
    "district_code": "440305",
    "industry_code": "F52",
    "registered_on": "2020-01-05",
    "status": "存续",
    "credit_risk": "B",
}


@pytest.fixture(scope="module")
def contract():
    return Contract.ephemeral()


def _verdicts(contract, kind, rows, rules, name):
    """Runs the suite on `rows` (raw text, one dict per row, lines 2, 3, …); returns
    {line: reason} for quarantined rows, and the accepted frame."""
    raw = pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}).with_columns(
        source_file=pl.lit(f"T/{kind}.csv"), source_line=pl.int_range(pl.len(), dtype=pl.Int64) + 2
    )
    typed = normalise_registry(raw, kind, "T")
    result = contract.validate(name, validation_frame(typed, kind, rules), rules)
    kept = raw_to_keep(raw, typed, kind)  # what ingest writes of the rows as submitted, and gives back whole
    verdicts = file_verdicts(typed.lazy(), kept.lazy(), result.results, rules, kind)
    q, acc = verdicts.quarantined, accepted_rows(typed, verdicts.at)
    assert acc.height + q.height == typed.height  # read = accepted + quarantined
    return dict(zip(q["source_line"], q["reason"], strict=True)), acc, q


def test_each_object_rule_gives_its_reason(contract):
    rows = [
        GOOD_OBJECT,  # 2 clean
        {**GOOD_OBJECT, "uscc": "91350100M000100Y44"},  # 3 last char wrong
        {**GOOD_OBJECT, "uscc": complete_uscc("91350100M000100Y5")},  # 4 only the embedded org check fails
        {**GOOD_OBJECT, "uscc": "91350100M000100Y4"},  # 5 17 characters
        {**GOOD_OBJECT, "uscc": complete_uscc("A1440300MA5DC6QX5"), "name": ""},  # 6 valid A-code, blank name
        {**GOOD_OBJECT, "uscc": complete_uscc("N2440300MA5DC6QX5"), "district_code": "440399"},  # 7
        {**GOOD_OBJECT, "uscc": complete_uscc("Y1440300MA5DC6QX5"), "industry_code": "Z99"},  # 8
        {**GOOD_OBJECT, "uscc": complete_uscc("91440300MA5DC6QX5"), "registered_on": "2021-13-45"},  # 9
        {**GOOD_OBJECT, "uscc": complete_uscc("92440300MA5DC6QX5"), "registered_on": "2030-01-01"},  # 10 future
        {**GOOD_OBJECT, "uscc": complete_uscc("93440300MA5DC6QX5"), "status": "停业整顿"},  # 11
        {**GOOD_OBJECT, "uscc": complete_uscc("51440300MA5DC6QX5"), "credit_risk": "E"},  # 12
    ]
    got, accepted, _ = _verdicts(contract, "objects", rows, object_rules(RUN_DATE), "objects-rules")
    assert got == {
        3: "uscc_check_char",
        4: "uscc_org_check",
        5: "uscc_length",
        6: "required_missing",
        7: "district_unknown",
        8: "industry_unknown",
        9: "date_unparseable",
        10: "date_implausible",
        11: "enum_unknown",
        12: "enum_unknown",
    }
    assert accepted["source_line"].to_list() == [2]


def test_identifier_rules_and_codes_that_must_pass(contract):
    org = "600037341"  # 60003734-1, hand-computed in test_uscc.py
    rows = [
        {
            **GOOD_OBJECT,
            "uscc": "",
            "org_code": f"{org[:8]}-{org[8]}",
            "legacy_reg_no": "",
        },  # 2 no USCC, org code: kept for merge
        {**GOOD_OBJECT, "uscc": "", "org_code": "600037342", "legacy_reg_no": ""},  # 3 bad org code
        {**GOOD_OBJECT, "uscc": "", "org_code": "", "legacy_reg_no": "440301100000017"},  # 4 bad registration number
        {**GOOD_OBJECT, "uscc": "", "org_code": "", "legacy_reg_no": ""},  # 5 no identifier at all
        {
            **GOOD_OBJECT,
            "uscc": " ９１３５０１００ｍ０００１００ｙ４３ ",
            "org_code": "",
            "legacy_reg_no": "",
        },  # 6 full-width, spaces, case
    ]
    got, accepted, _ = _verdicts(contract, "objects", rows, object_rules(RUN_DATE), "objects-ids")
    assert got == {3: "org_code_check", 4: "reg_no_check", 5: "required_missing"}
    assert accepted["source_line"].to_list() == [2, 6]


def test_duplicates_keep_the_first_row_and_quarantine_later_ones_with_original_values(contract):
    other = {**GOOD_OBJECT, "uscc": complete_uscc("91440300MA5DC6QX5"), "name": '=HYPERLINK("x")'}
    rows = [GOOD_OBJECT, other, GOOD_OBJECT, {**other, "name": "另一名称"}]
    # line 4 repeats line 2 exactly: duplicate_row; line 5 repeats line 3's USCC with other values: duplicate_id
    got, accepted, q = _verdicts(contract, "objects", rows, object_rules(RUN_DATE), "objects-dups")
    assert got == {4: "duplicate_row", 5: "duplicate_id"}
    assert accepted["source_line"].to_list() == [2, 3]
    original = json.loads(q.filter(pl.col("source_line") == 5)["original_values"][0])
    assert original["name"] == "另一名称" and original["uscc"] == other["uscc"]
    assert q.filter(pl.col("source_line") == 4)["reasons"][0].to_list() == ["duplicate_row", "duplicate_id"]


def test_inspector_rules(contract):
    good = {
        "inspector_id": "AMR00001",
        "name": "王伟",
        "department": "AMR",
        "district_code": "440305",
        "cert_no": "44030001",
        "cert_valid_until": "2020-01-01",
        "item_scope": "AMR-001;AMR-002",
        "status": "在岗",
    }
    rows = [
        good,  # 2 expired certificate is still valid data
        {**good, "inspector_id": "AMR00002", "item_scope": "AMR-001;XYZ-9"},  # 3
        {**good, "inspector_id": "AMR00003", "department": "FOO"},  # 4
        {**good, "inspector_id": "AMR00004", "cert_valid_until": "长期"},  # 5
        {**good, "name": "李娜"},
    ]  # 6 same id as line 2
    got, _, _ = _verdicts(contract, "inspectors", rows, inspector_rules(["AMR-001", "AMR-002"]), "inspectors-rules")
    assert got == {3: "item_scope_unknown", 4: "department_unknown", 5: "date_unparseable", 6: "duplicate_id"}


def test_item_rules(contract):
    good = {
        "item_id": "AMR-001",
        "department": "AMR",
        "name": "食品经营检查",
        "category": "重点",
        "scope": "industries=H",
    }
    rows = [
        good,
        {**good, "item_id": "AMR-002", "category": "其他"},
        {**good, "name": "x"},
    ]  # line 4 repeats line 2's id
    got, _, _ = _verdicts(contract, "items", rows, item_rules(), "items-rules")
    assert got == {3: "enum_unknown", 4: "duplicate_id"}


def test_every_quarantine_reason_is_in_the_shared_vocabulary():
    # the rules, the generator's truth file and the docs meet on transforms/reasons.py
    from jointdraw.transforms.reasons import ACCEPT, ROW_REASONS
    from jointdraw.transforms.samplecity.submission import INSPECTOR_ERRORS, OBJECT_ERRORS

    rules = [*object_rules(RUN_DATE), *inspector_rules([]), *item_rules()]
    assert {r.reason for r in rules} <= set(ROW_REASONS)
    assert {reason for _, reason in [*OBJECT_ERRORS.values(), *INSPECTOR_ERRORS.values()]} <= set(ROW_REASONS) | {
        ACCEPT
    }


def test_a_file_validated_in_a_batch_gets_what_it_gets_alone(contract):
    """Validation in batches (one GX run over several departments' files, each file's share sliced
    back: contract/validation.py:result_slice) gives every file the failing rows, counts, percentages
    and success it gets validated alone. The second file repeats the first file's rows: a duplicate
    across files is not a duplicate (uniqueness is per file)."""
    from jointdraw.transforms.contract.frames import result_slice

    rules = object_rules(RUN_DATE)
    files = {
        "A": [GOOD_OBJECT, {**GOOD_OBJECT, "uscc": "91350100M000100Y44"}, {**GOOD_OBJECT, "status": "停业整顿"}],
        "B": [GOOD_OBJECT, {**GOOD_OBJECT, "name": ""}, GOOD_OBJECT, {**GOOD_OBJECT, "credit_risk": "E"}],
    }
    typed = {
        d: normalise_registry(
            pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}).with_columns(
                source_file=pl.lit(f"{d}/objects.csv"), source_line=pl.int_range(pl.len(), dtype=pl.Int64) + 2
            ),
            "objects",
            d,
        )
        for d, rows in files.items()
    }
    both = validation_frame(pl.concat(list(typed.values())), "objects", rules)
    _, batch = contract.check("objects-batch", both, rules)
    start = 0
    for d, frame in typed.items():
        _, alone = contract.check(f"objects-alone-{d}", validation_frame(frame, "objects", rules), rules)
        share = result_slice(batch, start, start + frame.height, both)
        start += frame.height
        keys = ("element_count", "unexpected_count", "unexpected_percent", "unexpected_index_list")
        for a, s in zip(alone.results, share.results, strict=True):
            assert {k: a.result.get(k) for k in keys} == {k: s.result.get(k) for k in keys}, (d, a.expectation_config)
            assert a.success == s.success
        assert (
            alone.success == share.success
            and alone.statistics["successful_expectations"] == (share.statistics["successful_expectations"])
        )
    assert not share.success  # the test compares failures, not only passes


def _typed(kind, rows, source_file):
    raw = pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}).with_columns(
        source_file=pl.lit(source_file), source_line=pl.int_range(pl.len(), dtype=pl.Int64) + 2
    )
    return normalise_registry(raw, kind, source_file.split("/")[0])


def test_rules_judged_once_per_distinct_value_fail_the_rows_every_row_validation_fails(contract):
    """contract/frames.py: GX judges uniqueness on every row and every other rule once per distinct
    value, then puts the verdicts back on the rows. The result must be the one GX gives on every row:
    here the same failing rows, counts, percentages and success as a validation of the row-by-row
    columns themselves. Values repeat (two districts, one bad; a bad status twice; a blank name), and
    a duplicate row and a repeated USCC make the uniqueness rules fail."""
    other = {**GOOD_OBJECT, "uscc": complete_uscc("91440300MA5DC6QX5"), "district_code": "440303"}
    rows = [
        GOOD_OBJECT,  # 2
        other,  # 3
        {**GOOD_OBJECT, "uscc": complete_uscc("92440300MA5DC6QX5"), "district_code": "440399"},  # 4 district_unknown
        GOOD_OBJECT,  # 5 repeats line 2: duplicate_row, duplicate_id
        {**other, "uscc": complete_uscc("93440300MA5DC6QX5"), "status": "停业整顿"},  # 6 enum_unknown
        {**other, "uscc": complete_uscc("51440300MA5DC6QX5"), "status": "停业整顿", "name": ""},  # 7 both
        {**other, "uscc": complete_uscc("Y1440300MA5DC6QX5"), "registered_on": "2021-13-45"},  # 8 unreadable date
    ]
    typed = _typed("objects", rows, "T/objects.csv")
    rules = object_rules(RUN_DATE)
    frames = validation_frame(typed, "objects", rules)
    assert frames.per_value.shape[0] < frames.height  # the value rules were judged on fewer rows than there are
    _, by_value = contract.check("objects-by-value", frames, rules)
    every_row = frames.rows.to_pandas(use_pyarrow_extension_array=True)
    _, by_row = contract.check("objects-by-row", every_row, rules)
    keys = ("element_count", "unexpected_count", "unexpected_percent", "missing_count", "unexpected_index_list")
    row_results = {r.expectation_config.meta["rule_index"]: r for r in by_row.results}
    for r in by_value.results:
        alone = row_results[r.expectation_config.meta["rule_index"]]
        assert {k: r.result.get(k) for k in keys} == {k: alone.result.get(k) for k in keys}, r.expectation_config
        assert r.success == alone.success
    assert by_value.statistics["unsuccessful_expectations"] == by_row.statistics["unsuccessful_expectations"] > 0
    got, _, _ = _verdicts(contract, "objects", rows, rules, "objects-by-value-verdicts")
    assert got == {
        4: "district_unknown",
        5: "duplicate_row",
        6: "enum_unknown",
        7: "required_missing",
        8: "date_unparseable",
    }


def test_a_column_with_missing_values_is_judged_without_them_where_gx_leaves_them_out(contract):
    """validation.py `_what_gx_judges`: a per-row column whose every rule leaves nulls out (the USCC's check,
    uniqueness) is given to GX without its missing rows, each row labelled with its position. The result is
    the one GX gives on every row: the same failing rows (after the missing ones: their positions, not their
    places in the shorter frame), counts and percentages. A rule on nulls themselves keeps them."""
    import great_expectations.expectations as gxe

    from jointdraw.transforms.contract.validation import _what_gx_judges

    org = "600037341"  # 60003734-1, hand-computed in test_uscc.py
    no_uscc = {**GOOD_OBJECT, "uscc": "", "org_code": org}
    rows = [
        no_uscc,  # 2
        GOOD_OBJECT,  # 3
        {**no_uscc, "name": "第三家"},  # 4
        {**GOOD_OBJECT, "uscc": "91350100M000100Y44"},  # 5 uscc_check_char
        {**GOOD_OBJECT, "name": "另一家"},  # 6 duplicate_id: the USCC of line 3
    ]
    typed = _typed("objects", rows, "N/objects.csv")
    rules = object_rules(RUN_DATE)
    frames = validation_frame(typed, "objects", rules)
    uscc = frames.per_row[["uscc"]]
    judged = _what_gx_judges(uscc, [r.expectation for r in rules if r.expectation.column == "uscc"])
    assert judged.index.tolist() == [1, 3, 4]  # the three rows with a USCC, by their positions
    assert _what_gx_judges(uscc, [gxe.ExpectColumnValuesToNotBeNull(column="uscc")]) is uscc
    _, by_value = contract.check("objects-missing", frames, rules)
    _, by_row = contract.check("objects-missing-by-row", frames.rows.to_pandas(use_pyarrow_extension_array=True), rules)
    keys = ("element_count", "unexpected_count", "unexpected_percent", "missing_count", "unexpected_index_list")
    row_results = {r.expectation_config.meta["rule_index"]: r for r in by_row.results}
    failed = {}
    for r in by_value.results:
        alone = row_results[r.expectation_config.meta["rule_index"]]
        assert {k: r.result.get(k) for k in keys} == {k: alone.result.get(k) for k in keys}, r.expectation_config
        if r.result.get("unexpected_index_list"):
            failed[r.expectation_config.kwargs["column"]] = r.result["unexpected_index_list"]
    assert failed == {"uscc": [3], "uscc_in_file": [1, 4]}  # GX's uniqueness fails every row of a repeated key
    got, _, _ = _verdicts(contract, "objects", rows, rules, "objects-missing-verdicts")
    assert got == {5: "uscc_check_char", 6: "duplicate_id"}


def test_a_text_over_2000_characters_is_too_long_and_2000_chinese_characters_are_not(contract):
    """`text_fits` counts bytes first (a value of at most 2,000 bytes has at most 2,000 characters) and
    characters only for longer values: 2,000 Chinese characters are 6,000 bytes and fit; 2,001 do not."""
    rows = [
        {**GOOD_OBJECT, "name": "深" * 2000},  # 2 fits
        {**GOOD_OBJECT, "uscc": complete_uscc("91440300MA5DC6QX5"), "name": "深" * 2001},  # 3 too long
    ]
    got, _, _ = _verdicts(contract, "objects", rows, object_rules(RUN_DATE), "objects-long-text")
    assert got == {3: "value_too_long"}


def test_identifier_rules_judged_in_chunks_on_every_core_give_one_calls_verdicts_in_order(monkeypatch):
    """transforms/contract/expectations.py judges a long identifier column in chunks, several at once: the
    reasons come back in the rows' order, the same as one call of the rule."""
    from jointdraw.transforms.contract import expectations
    from jointdraw.transforms.uscc import uscc_reasons

    monkeypatch.setattr(expectations, "CHUNK", 3)
    codes = pl.Series(
        [VALID, None, "9.14403E+17", VALID[:17] + "0", complete_uscc("91440300MA5F" + "0" * 5), "Z" * 18, VALID[:10]]
        * 5
    )
    judged = expectations._reasons(uscc_reasons, codes)
    assert judged.equals(uscc_reasons(codes)) and judged.null_count() < codes.len()
    assert judged.n_unique() > 3, judged.to_list()  # valid, missing and several reasons: an order that shows


def test_accepted_rows_are_written_a_row_group_at_a_time_without_exactly_the_quarantined_positions(tmp_path):
    """A big file's accepted rows are its typed file streamed a row group at a time (never whole in memory):
    positions count on from one group to the next, and the columns ingest dictionary-encodes stay so."""
    import pyarrow.parquet as pq

    from jointdraw.transforms.contract.department_files import write_accepted
    from jointdraw.transforms.normalise import dictionary_columns
    from jointdraw.transforms.storage.runfolder import work_parquet_appender

    rows = [{**GOOD_OBJECT, "uscc": complete_uscc(f"9144030{i}MA5DC6QX5")} for i in range(9)]
    typed = _typed("objects", rows, "T/objects.csv")
    with work_parquet_appender(tmp_path / "typed.parquet", dictionary_columns("objects")) as append:
        for start in (0, 3, 6):  # three row groups, as ingest writes a file batch by batch
            append(typed.slice(start, 3))
    quarantined = pl.Series([0, 4, 8])  # the first row of the first group, the middle of the second, the last
    path = write_accepted(tmp_path / "typed.parquet", quarantined, "objects", tmp_path / "accepted.parquet")
    assert pl.read_parquet(path)["source_line"].to_list() == [3, 4, 5, 7, 8, 9]
    assert pl.read_parquet(path).equals(typed.filter(~pl.int_range(pl.len()).is_in([0, 4, 8])))
    written = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {written.column(i).path_in_schema: str(written.column(i).encodings) for i in range(written.num_columns)}
    assert "DICTIONARY" in encodings["district_code"] and "DICTIONARY" not in encodings["uscc"]


def test_great_expectations_keeps_no_frame_once_a_batch_is_judged(contract):
    """GX's data source keeps every batch it loaded, in reference cycles only a full pass of the collector frees:
    the frames of a 16M city's AMR file (1.3 GB) were still held when the merge began. Once judged, a batch's
    frames (the per-row frame's columns GX was given one at a time, the per-value frame) are gone as soon as the
    caller lets them go, the collector off."""
    import gc

    import pandas as pd

    rules = object_rules(RUN_DATE)
    rows = [{**GOOD_OBJECT, "uscc": complete_uscc(f"9144030{i}MA5DC6QX5")} for i in range(6)]
    typed = _typed("objects", [*rows, {**GOOD_OBJECT, "uscc": "91350100M000100Y44"}], "K/objects.csv")
    frames = validation_frame(typed, "objects", rules)

    def held() -> int:  # pandas frames of the batch's 7 rows
        return sum(1 for o in gc.get_objects() if isinstance(o, pd.DataFrame) and len(o) == typed.height)

    gc.collect()
    gc.disable()
    try:
        _, result = contract.check("objects-kept", frames, rules)
        assert held() >= 1  # the caller's own (what is counted is there to count)
        del frames
        assert held() == 0
    finally:
        gc.enable()
    assert not result.success  # it judged them
