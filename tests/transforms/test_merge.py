"""Merging the departments' directories (DuckDB SQL) on literal cases."""

import polars as pl

from jointdraw.transforms.merge import (
    key_records,
    links_query,
    merge_again,
    merge_connection,
    merge_frames,
    merged_again,
)
from jointdraw.transforms.normalise import normalise_registry
from jointdraw.transforms.uscc import complete_uscc

RESTAURANT = complete_uscc("91440300MA5DC6QX5")  # org code MA5DC6QX5 at positions 9-17
SHOP = "91350100M000100Y43"


def _objects(department, rows):
    raw = pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}).with_columns(
        source_file=pl.lit(f"{department}/objects.csv"), source_line=pl.int_range(pl.len(), dtype=pl.Int64) + 2
    )
    return normalise_registry(raw, "objects", department)


def _row(uscc, **kw):
    base = {
        "uscc": uscc,
        "name": "深圳市福满楼（深圳）餐饮管理有限公司",
        "entity_type": "企业",
        "district_code": "440305",
        "address": "南山区科苑路1号",
        "industry_code": "H62",
        "registered_on": "2019-05-01",
        "status": "存续",
        "credit_risk": "B",
        "org_code": "",
        "legacy_reg_no": "",
        "tags": "",
    }
    return {**base, **kw}


def test_one_entity_in_three_departments_becomes_one_record_with_resolved_conflicts():
    objects = pl.concat(
        [
            _objects("HLT", [_row(RESTAURANT, name="深圳市福满楼(深圳)餐饮管理有限公司", address="南山区科苑路10号")]),
            _objects("AMR", [_row(RESTAURANT, tags="食品经营许可证")]),
            _objects("FIR", [_row(RESTAURANT, credit_risk="D", tags="经营异常名录")]),
        ]
    )
    # health writes half-width brackets (not a conflict) and an old address; fire rates it D
    directory, merged = merge_frames(objects)
    assert directory.height == 1 and merged.records == 3
    row = directory.row(0, named=True)
    assert row["departments"] == ["AMR", "FIR", "HLT"] and row["n_records"] == 3
    assert row["name"] == "深圳市福满楼（深圳）餐饮管理有限公司"  # the market regulator's spelling
    assert row["address"] == "南山区科苑路1号"  # AMR's registration facts win
    assert row["credit_risk"] == "D"  # the highest risk any department gives
    assert row["tags"] == sorted(["食品经营许可证", "经营异常名录"])  # union, sorted
    found = merged.conflicts
    assert found.select("attribute", "chosen").rows() == [("address", "南山区科苑路1号"), ("credit_risk", "D")]
    assert found.filter(pl.col("attribute") == "credit_risk")["values"][0].to_list() == ["AMR=B", "FIR=D", "HLT=B"]


def test_records_without_uscc_link_by_organization_code_or_registration_number():
    objects = pl.concat(
        [
            _objects("AMR", [_row(RESTAURANT), _row(SHOP, legacy_reg_no="440301100000016")]),
            _objects(
                "ENV",
                [
                    _row("", org_code="MA5DC6QX-5"),  # links to RESTAURANT through positions 9-17
                    _row("", legacy_reg_no="440301100000016"),  # links to SHOP through AMR's registration number
                    _row("", org_code="600037341", name="无主记录"),
                ],
            ),  # links to nothing: kept, own key
        ]
    )
    directory, merged = merge_frames(objects)
    keys = dict(zip(directory["entity_key"], directory["linked_by"].to_list(), strict=True))
    assert keys == {RESTAURANT: ["org_code", "uscc"], SHOP: ["reg_no", "uscc"], "ORG:600037341": ["unlinked"]}
    unlinked = directory.filter(pl.col("entity_key") == "ORG:600037341").row(0, named=True)
    assert unlinked["uscc"] is None and unlinked["name"] == "无主记录" and unlinked["departments"] == ["ENV"]
    assert directory["n_records"].sum() == objects.height  # nothing dropped
    assert merged.unlinked.select("entity_key", "source_file", "source_line").rows() == [
        ("ORG:600037341", "ENV/objects.csv", 4)
    ]


def test_without_the_market_regulator_the_smallest_department_code_wins():
    objects = pl.concat([_objects("HLT", [_row(SHOP, name="乙")]), _objects("ENV", [_row(SHOP, name="甲")])])
    directory, merged = merge_frames(objects)
    assert directory["name"].to_list() == ["甲"]
    assert merged.conflicts.select("attribute", "values").rows() == [("name", ["ENV=甲", "HLT=乙"])]


def test_a_fact_missing_from_the_first_record_comes_from_the_next_one_that_has_it():
    # AMR's record comes first but has no address and no operator; ENV's has both, HLT's only an operator:
    # each missing fact comes from the next record in precedence order (ENV before HLT), the rest stay AMR's
    objects = pl.concat(
        [
            _objects("AMR", [_row(RESTAURANT, address="", operator_name="")]),
            _objects("HLT", [_row(RESTAURANT, address="南山区科苑路3号", operator_name="李四", name="别名")]),
            _objects("ENV", [_row(RESTAURANT, address="南山区科苑路2号", operator_name="张三")]),
        ]
    )
    row = merge_frames(objects)[0].row(0, named=True)
    assert (row["address"], row["operator_name"], row["name"]) == (
        "南山区科苑路2号",
        "张三",
        "深圳市福满楼（深圳）餐饮管理有限公司",
    )


def test_a_missing_value_is_no_conflict_and_no_tags_make_an_empty_union():
    # ENV has no address and HLT's district differs: only the district is a conflict (a null is no
    # value); no record has tags, so the union is [] (not null); SHOP is listed by two departments and
    # RESTAURANT by one, so the departments and link kinds come from two different sets
    objects = pl.concat(
        [
            _objects("AMR", [_row(SHOP)]),
            _objects("ENV", [_row(SHOP, address="")]),
            _objects("HLT", [_row(RESTAURANT, district_code="440304")]),
        ]
    )
    directory, merged = merge_frames(objects)
    rows = {row["entity_key"]: row for row in directory.iter_rows(named=True)}
    assert rows[SHOP]["tags"] == [] and rows[SHOP]["departments"] == ["AMR", "ENV"]
    assert rows[SHOP]["linked_by"] == ["uscc"] and rows[SHOP]["address"] == "南山区科苑路1号"
    assert rows[RESTAURANT]["departments"] == ["HLT"] and rows[RESTAURANT]["n_records"] == 1
    assert merged.conflicts.height == 0 and merged.entities_by_link == {"uscc": 2}


def test_records_disagreeing_only_among_later_departments_are_a_conflict():
    # AMR has no credit class; ENV says A and HLT says C: the directory takes C (highest risk) and the
    # class is a conflict although the first record has no value
    objects = pl.concat(
        [
            _objects("AMR", [_row(SHOP, credit_risk="")]),
            _objects("ENV", [_row(SHOP, credit_risk="A")]),
            _objects("HLT", [_row(SHOP, credit_risk="C")]),
        ]
    )
    directory, merged = merge_frames(objects)
    assert directory["credit_risk"].to_list() == ["C"]
    assert merged.conflicts.select("attribute", "values", "chosen").rows() == [("credit_risk", ["ENV=A", "HLT=C"], "C")]


OTHER = complete_uscc("91440300MA5XY1234")  # org code MA5XY1234: only HLT lists it, before


def test_merging_again_after_one_department_changed_gives_what_merging_everything_gives(tmp_path):
    """HLT's file changes: an entity leaves it, another's address changes, a new one comes, and the entity an ENV
    record without a USCC was linked to is gone (the record is now unlinked). Merged again from the earlier
    merge, only the affected entities are merged; the directory, conflicts, unlinked records, links and counts are
    those of merging every record."""
    amr = [_row(RESTAURANT), _row(SHOP, legacy_reg_no="440301100000016"), _row(SHOP.replace("Y43", "Y51"))]
    env = [_row("", org_code="MA5XY123-4", name="环保记录"), _row(SHOP.replace("Y43", "Y51"), credit_risk="D")]
    hlt_before = [_row(RESTAURANT, address="南山区科苑路10号"), _row(OTHER, name="其他公司"), _row(SHOP, name="乙")]
    hlt_now = [_row(RESTAURANT, address="南山区科苑路12号"), _row(complete_uscc("91440300MA5NEW01X"), name="新公司")]
    files = {}
    for name, department, rows in [
        ("AMR", "AMR", amr), ("ENV", "ENV", env), ("HLT-before", "HLT", hlt_before), ("HLT", "HLT", hlt_now)
    ]:  # fmt: skip
        files[name] = str(tmp_path / f"{name}.parquet")
        _objects(department, rows).write_parquet(files[name])
    before = [files["AMR"], files["ENV"], files["HLT-before"]]
    now = [files["AMR"], files["ENV"], files["HLT"]]
    earlier_directory, earlier = merge_frames(pl.read_parquet(before))
    earlier_directory.write_parquet(tmp_path / "earlier.parquet")
    assert earlier_directory.filter(pl.col("entity_key") == OTHER)["linked_by"].to_list() == [["org_code", "uscc"]]

    con = merge_connection()
    again = merge_again(con, before, now, ["HLT"], tmp_path / "earlier.parquet", lambda records: 2)
    for number, directory in enumerate(again.ranges):
        directory.sink_parquet(tmp_path / f"directory-{number:03d}.parquet")
    parts = sorted(tmp_path.glob("directory-*.parquet"))
    merged = merged_again(
        parts, earlier.conflicts, tmp_path / "earlier.parquet", again.affected, again.part, again.unlinked_records
    )

    everything, full = merge_frames(pl.read_parquet(now))
    assert sorted(again.affected) == sorted(
        [RESTAURANT, OTHER, SHOP, complete_uscc("91440300MA5NEW01X"), "ORG:MA5XY1234"]
    )
    assert pl.read_parquet(parts).equals(everything)
    counts = ("records", "entities", "listed_by_several_departments", "entities_by_link")
    assert [getattr(merged, c) for c in counts] == [getattr(full, c) for c in counts]
    assert merged.conflicts.equals(full.conflicts) and merged.unlinked.equals(full.unlinked)
    assert "ORG:MA5XY1234" in merged.unlinked["entity_key"].to_list()
    assert merged.conflicts.filter(pl.col("entity_key") == SHOP.replace("Y43", "Y51")).height == 1  # kept as it was
    full_con = merge_connection()
    full_con.read_parquet(now).create_view("records")
    key_records(full_con)
    assert again.links.equals(full_con.sql(links_query()).pl())


def _merged_again_and_whole(tmp_path, before, now, changed, most=None):
    """`merge_again` from a merge of the files `before` to the files `now` (what changed: the departments `changed`),
    its directory written and counted (`merged_again`); and the merge of everything `now`. None when not merged
    again."""
    earlier_directory, earlier = merge_frames(pl.read_parquet(before))
    earlier_directory.write_parquet(tmp_path / "earlier.parquet")
    again = merge_again(merge_connection(), before, now, changed, tmp_path / "earlier.parquet", lambda records: 2, most)
    if again is None:
        return None
    for number, directory in enumerate(again.ranges):
        directory.sink_parquet(tmp_path / f"directory-{number:03d}.parquet")
    parts = sorted(tmp_path.glob("directory-*.parquet"))
    merged = merged_again(
        parts, earlier.conflicts, tmp_path / "earlier.parquet", again.affected, again.part, again.unlinked_records
    )
    return again, pl.read_parquet(parts), merged, *merge_frames(pl.read_parquet(now))


def test_a_directory_merged_again_keeps_the_files_of_the_key_ranges_where_nothing_changed(tmp_path):
    """The earlier directory was written in two files (two key ranges). HLT rates an entity of the second range D
    now: merged again, the directory is cut where the earlier one was; the first range is None (the
    earlier file as it is, linked by the stage) and only the second is written; the two are the directory of
    merging everything. An earlier directory in one file is one range."""
    low, high = (
        [complete_uscc(f"9144030010000000{n}") for n in (1, 2)],
        [complete_uscc(f"9144030090000000{n}") for n in (1, 2)],
    )
    amr = [_row(k, name=f"公司{n}") for n, k in enumerate(low + high)]
    hlt_before, hlt_now = [_row(high[0]), _row(high[1])], [_row(high[0], credit_risk="D"), _row(high[1])]
    files = {}
    for name, department, rows in [("AMR", "AMR", amr), ("HLT-before", "HLT", hlt_before), ("HLT", "HLT", hlt_now)]:
        files[name] = str(tmp_path / f"{name}.parquet")
        _objects(department, rows).write_parquet(files[name])
    before, now = [files["AMR"], files["HLT-before"]], [files["AMR"], files["HLT"]]
    earlier_directory, _ = merge_frames(pl.read_parquet(before))
    earlier = [tmp_path / "earlier-000.parquet", tmp_path / "earlier-001.parquet"]
    earlier_directory.filter(pl.col("entity_key") < high[0]).write_parquet(earlier[0])
    earlier_directory.filter(pl.col("entity_key") >= high[0]).write_parquet(earlier[1])

    again = merge_again(merge_connection(), before, now, ["HLT"], earlier, lambda records: 5)
    assert again.affected.to_list() == [high[0]]
    assert again.ranges[0] is None and len(again.ranges) == 2  # cut as before, not in 5 ranges
    again.ranges[1].sink_parquet(tmp_path / "written.parquet")
    everything, _ = merge_frames(pl.read_parquet(now))
    assert pl.read_parquet([earlier[0], tmp_path / "written.parquet"]).equals(everything)
    assert everything.filter(pl.col("entity_key") == high[0])["credit_risk"].item() == "D"

    earlier_directory.write_parquet(tmp_path / "one.parquet")
    again = merge_again(merge_connection(), before, now, ["HLT"], tmp_path / "one.parquet", lambda records: 5)
    assert len(again.ranges) == 1 and again.ranges[0].collect().equals(everything)


def test_a_registry_sent_again_whole_has_only_the_records_that_differ_merged_again(tmp_path):
    """The market regulator sends its whole registry again, rows in another order: one entity's status changed, one
    is new, one is gone, and a record without a USCC (linked to another of its entities) moved. Only those four
    entities are merged again (records that only moved are the same records); the directory, conflicts, unlinked
    records and counts are those of merging everything. Past `most` entities, it is not merged again."""
    a3, a4, a5, a6 = (complete_uscc(f"91440300MA5{c * 5}{n}") for n, c in enumerate("ABCE", start=1))
    branch = _row("", org_code=a4[8:17], name="分支机构记录")  # linked to a4 through its organisation code
    amr_before = [_row(RESTAURANT), _row(SHOP), _row(a3, name="丙"), _row(a4, name="丁"), branch, _row(a6, name="己")]
    amr_now = [_row(a3, name="丙"), _row(SHOP), _row(RESTAURANT, status="注销"), branch, _row(a4, name="丁")]
    amr_now.append(_row(a5, name="戊"))
    env = [_row(SHOP, credit_risk="D"), _row(a3, name="丙（环保）")]  # unchanged: SHOP and a3 keep their conflicts
    files = {}
    for name, department, rows in [("AMR-before", "AMR", amr_before), ("AMR", "AMR", amr_now), ("ENV", "ENV", env)]:
        files[name] = str(tmp_path / f"{name}.parquet")
        _objects(department, rows).write_parquet(files[name])
    before, now = [files["AMR-before"], files["ENV"]], [files["AMR"], files["ENV"]]

    again, directory, merged, everything, full = _merged_again_and_whole(tmp_path, before, now, ["AMR"])
    assert sorted(again.affected) == sorted([RESTAURANT, a4, a5, a6])  # not SHOP nor a3: they only moved
    assert directory.equals(everything)
    counts = ("records", "entities", "listed_by_several_departments", "entities_by_link")
    assert [getattr(merged, c) for c in counts] == [getattr(full, c) for c in counts]
    assert merged.conflicts.equals(full.conflicts) and merged.unlinked.equals(full.unlinked)
    assert set(merged.conflicts["entity_key"]) == {SHOP, a3, a4}  # SHOP's and a3's taken as they were
    assert _merged_again_and_whole(tmp_path, before, now, ["AMR"], most=3) is None
