import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from jointdraw.transforms import normalise
from jointdraw.transforms.normalise import (
    dictionary_columns,
    normalise_registry,
    parse_date,
    raw_to_keep,
    submitted_rows,
)
from jointdraw.transforms.storage.registry_files import open_registry, scan_inbox


def test_dates_in_the_forms_departments_use():
    text = [
        "2021-01-05",
        "2021/1/5",
        "20210105",
        "2021年01月05日",
        "44201",
        "2021-01-05 00:00:00",
        "２０２１-０１-０５",
        "2021-13-45",
        "不详",
        None,
    ]
    got = pl.select(parse_date(pl.lit(pl.Series(text, dtype=pl.String)))).to_series().to_list()
    jan5 = dt.date(2021, 1, 5)  # 44201 is Excel's serial for 2021-01-05 (days since 1899-12-30)
    assert got == [jan5] * 7 + [None, None, None]


# the two ways a batch is normalised: column by column (a big batch) and in one query (a small one)
BOTH_WAYS = pytest.mark.parametrize("one_query_rows", [0, 10**9], ids=["column-by-column", "one-query"])


@BOTH_WAYS
def test_objects_are_typed_and_nothing_is_lost(monkeypatch, one_query_rows):
    monkeypatch.setattr(normalise, "ONE_QUERY_ROWS", one_query_rows)
    raw = pl.DataFrame(
        {
            "uscc": [" 91350100m000100y43 ", "９１３５０１００Ｍ０００１００Ｙ４３", None],
            "name": ["  深圳市  华润 有限公司 ", "x\u200b", ""],  # a zero-width space pasted in
            "entity_type": ["企业", " Individual ", "公司制"],
            "status": ["存续", "注销", "状态不详"],
            "credit_risk": ["b", "D类", "E"],
            "registered_on": ["2020/01/05", "bad", None],
            "tags": ["食品经营许可证；经营异常名录", None, "a, b ,"],
            "org_code": [None, None, "60003734-1"],
            "source_file": ["AMR/objects.csv"] * 3,
            "source_line": [2, 3, 4],
        }
    )
    got = normalise_registry(raw, "objects", "AMR")
    assert got.height == raw.height  # row-preserving
    assert got["uscc"].to_list() == ["91350100M000100Y43", "91350100M000100Y43", None]
    assert got["name"].to_list() == ["深圳市 华润 有限公司", "x", None]
    # known spellings → canonical codes; unknown values kept as submitted for validation to reject
    assert got["entity_type"].to_list() == ["enterprise", "individual", "公司制"]
    assert got["status"].to_list() == ["active", "deregistered", "状态不详"]
    assert got["credit_risk"].to_list() == ["B", "D", "E"]
    assert got["registered_on"].to_list() == [dt.date(2020, 1, 5), None, None]
    assert got["registered_on_text"].to_list() == ["2020/01/05", "bad", None]  # the original stays beside the date
    assert got["tags"].to_list() == [["食品经营许可证", "经营异常名录"], [], ["a", "b"]]
    assert got["org_code"].to_list() == [None, None, "600037341"]
    assert got["district_code"].null_count() == 3  # a column the file lacks comes out null
    assert got["submitted_by"].unique().to_list() == ["AMR"]


def test_the_raw_rows_keep_a_text_or_code_only_where_it_differs_from_the_typed_value_and_nothing_is_lost():
    raw = pl.DataFrame(
        {
            "uscc": ["91350100M000100Y43", " 91350100m000100y43", None, ""],
            "name": ["深圳市华润有限公司", "深圳市  华润", "x\u200b", "  "],
            "status": ["存续", "存续", "注销", None],  # an enumeration: kept as submitted, always
            "phone": ["0755-1", None, "", "０７５５"],
            "source_file": ["AMR/objects.csv"] * 4,
            "source_line": [2, 3, 4, 5],
        }
    )
    typed = normalise_registry(raw, "objects", "AMR")
    kept = raw_to_keep(raw, typed, "objects")
    assert kept["uscc"].to_list() == [None, " 91350100m000100y43", None, ""]  # as typed: null
    assert kept["name"].to_list() == [None, "深圳市  华润", "x\u200b", "  "]
    assert kept["phone"].to_list() == [None, None, "", "０７５５"]
    assert kept["status"].equals(raw["status"]) and kept.columns == raw.columns
    assert submitted_rows(kept, typed, "objects").equals(raw)  # every value as submitted, nulls and blanks too
    with pytest.raises(ValueError, match="not the same rows"):
        submitted_rows(kept.reverse(), typed, "objects")
    # a typed value where nothing was submitted would come back as if submitted: refused
    with pytest.raises(ValueError, match="typed values where nothing was submitted in uscc"):
        raw_to_keep(raw, typed.with_columns(uscc=pl.lit("91350100M000100Y43")), "objects")


def test_fast_paths_give_the_same_result_as_the_rule_on_every_row():
    from jointdraw.transforms.normalise import ALREADY_NORMAL, _apply, _rule

    messy = pl.Series(
        "v",
        [
            "91350100M000100Y43",
            " 9135 0100m000100y43",
            "９１",
            "",
            None,
            "深圳市  华润 ",
            "A",
            "A",
            "2021/1/5",
            "44201",
            "存续",
            "a；b",
            "已是 正常",
            "深圳\u200b华润\ufeff公司",  # zero-width characters pasted in with the name
            "\u2060A",
            "a\u00a0b\u3000c",
        ],
    )
    for how in ("code", "org_code", "text", "date", "enum:object_status", "list", "list_code"):
        rule = _rule(how)
        every_row = _apply(messy, rule, per_unique=False)
        assert _apply(messy, rule, per_unique=True).to_list() == every_row.to_list(), how
        if how in ALREADY_NORMAL:
            assert (
                _apply(messy, rule, per_unique=False, already_normal=ALREADY_NORMAL[how]).to_list()
                == every_row.to_list()
            ), how


def test_per_distinct_value_an_unchanged_column_is_given_back_and_the_others_looked_up_row_by_row():
    """Per distinct value (`_per_distinct`), an output whose every distinct value the rule gives back unchanged is
    the column itself; a single value the rule changes, a rule that changes the type (a date) or gives lists, and
    each row gets its distinct value's result (`_looked_up`), nulls included."""
    from jointdraw.transforms.normalise import _left_unchanged, _per_distinct, _rule

    canonical = pl.Series("status", ["active", None, "revoked", "active"])
    assert _per_distinct(canonical, {"status": _rule("enum:object_status")})["status"].equals(canonical)
    distinct = pl.DataFrame({"v": ["active", None], "_kept": ["active", None], "_changed": ["active", "revoked"]})
    distinct = distinct.with_columns(_typed=pl.Series([1, None]), _unnull=pl.Series(["active", "x"]))
    assert _left_unchanged(distinct, "v", ["kept", "changed", "typed", "unnull"]) == {"kept"}
    one_changed = pl.Series("status", ["active", None, "吊销，未注销", "active"])
    assert _per_distinct(one_changed, {"status": _rule("enum:object_status")})["status"].to_list() == [
        "active",
        None,
        "revoked",
        "active",
    ]
    dates = pl.Series("registered_on", ["2021-01-05", None, "2021/1/5"])
    both = _per_distinct(dates, {"registered_on": _rule("date"), "registered_on_text": _rule("text")})
    assert both["registered_on"].to_list() == [dt.date(2021, 1, 5), None, dt.date(2021, 1, 5)]
    assert both["registered_on_text"].equals(dates.alias("registered_on_text"))  # the text unchanged
    assert list(both) == ["registered_on", "registered_on_text"]
    tags = pl.Series("tags", ["a；b", None, "c", "a；b", ""])
    assert _per_distinct(tags, {"tags": _rule("list")})["tags"].to_list() == [["a", "b"], [], ["c"], ["a", "b"], []]


def test_the_dictionary_encoded_columns_are_columns_of_the_typed_table():
    """Ingest writes `dictionary_columns(kind)` dictionary-encoded: each names a column the typed table has (the
    writer refuses a name it does not know), never a column of distinct values."""
    for kind in ("objects", "inspectors", "items", "inspections"):
        raw = pl.DataFrame({"source_file": [f"AMR/{kind}.csv"], "source_line": [2]})
        named = set(dictionary_columns(kind))
        assert named <= set(normalise_registry(raw, kind, "AMR").columns), kind
        assert not named & {"uscc", "name", "address", "phone", "inspector_id", "item_id", "source_line"}, kind


def test_a_batch_is_typed_the_same_in_one_query_as_column_by_column(dirty_city, monkeypatch):
    # every file of the dirty city (planted errors: codes in every guard, dates in every form, unknown enums)
    batches = 0
    for file in scan_inbox(dirty_city / "inbox").files:
        for raw, _ in open_registry(file).batches():
            monkeypatch.setattr(normalise, "ONE_QUERY_ROWS", 0)
            by_column = normalise_registry(raw, file.kind, file.department)
            monkeypatch.setattr(normalise, "ONE_QUERY_ROWS", 10**9)
            assert_frame_equal(normalise_registry(raw, file.kind, file.department), by_column)
            batches += 1
    assert batches > 40
