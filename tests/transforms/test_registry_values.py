"""Registry values as departments' systems write them (issue 16), one code table at a time."""

import polars as pl
import pytest

from jointdraw.transforms.districts import district_code_of, district_column, district_in_address
from jointdraw.transforms.entity_types import entity_type_columns, parse_registered_type
from jointdraw.transforms.industry import (
    industries,
    industry_name,
    industry_reasons,
    is_valid_industry,
    normalise_industry,
)
from jointdraw.transforms.normalise import normalise_registry
from jointdraw.transforms.uscc import normalise_code, uscc_reasons


@pytest.mark.parametrize(
    "written, code, category",
    [
        ("有限责任公司（自然人投资或控股）", "1130", "enterprise"),
        ("有限责任公司(自然人投资或控股)", "1130", "enterprise"),  # half-width brackets
        ("有限责任公司 （ 自然人投资或控股 ）", "1130", "enterprise"),  # spaces
        ("1130", "1130", "enterprise"),  # the code alone
        ("有限责任公司（自然人投资或控股）(1130)", "1130", "enterprise"),
        ("1130-有限责任公司（自然人投资或控股）", "1130", "enterprise"),
        ("股份有限公司（上市）", "1210", "enterprise"),
        ("股份有限公司（中外合资，上市）", "5220", "enterprise"),  # ， for 、
        ("有限责任公司分公司（自然人投资或控股）", "2130", "enterprise"),
        ("个人独资企业", "4540", "enterprise"),
        ("有限合伙企业", "4533", "enterprise"),
        ("全民所有制", "3100", "enterprise"),
        ("外国（地区）企业常驻代表机构", "7200", "other"),
        ("个体工商户", "9500", "individual"),
        ("农民专业合作社", "9100", "cooperative"),
        ("农民专业合作社联合社", None, "cooperative"),
        ("企业", None, "enterprise"),  # the short forms of older exports
        ("事业单位", None, "other"),
    ],
)
def test_registered_types_map_to_their_code_and_category(written, code, category):
    got = parse_registered_type(written)
    assert (got["code"], got["category"]) == (code, category)


def test_type_table_flags_foreign_investment_and_branches():
    from jointdraw.transforms.reference import reference_table

    t = reference_table("entity_types")
    flags = {r["code"]: (r["foreign_invested"], r["branch"]) for r in t.iter_rows(named=True) if r["code"]}
    assert (
        flags["6150"] == ("true", "false")
        and flags["2130"] == ("false", "true")
        and flags["1130"] == ("false", "false")
    )


def test_category_comes_from_the_uscc_when_the_type_is_blank_and_a_contradiction_is_flagged():
    got = entity_type_columns(
        pl.Series([None, None, None, "个体工商户", "有限责任公司（自然人投资或控股）", "未知类型"]),
        pl.Series(
            [
                "91440300708461136T",
                "92440300MA5F000000",
                "93440300MA5F000000",
                "91440300708461136T",
                "91440300708461136T",
                "91440300708461136T",
            ]
        ),
    )
    # 91: enterprise, 92: individual business, 93: farmers' cooperative (GB 32100 positions 1–2)
    assert got["entity_type"].to_list() == [
        "enterprise",
        "individual",
        "cooperative",
        "individual",
        "enterprise",
        "未知类型",
    ]
    assert got["type_conflict"].to_list() == [False, False, False, True, False, False]
    assert got["registered_type"].to_list()[3:] == ["个体工商户", "有限责任公司（自然人投资或控股）", "未知类型"]


@pytest.mark.parametrize(
    "written, status",
    [
        ("存续（在营、开业、在册）", "active"),
        ("存续(在营、开业、在册)", "active"),
        ("在营（开业）企业", "active"),
        ("开业", "active"),
        ("在业", "active"),
        ("停业", "active"),
        ("清算", "active"),
        ("吊销，未注销", "revoked"),
        ("吊销,未注销", "revoked"),
        ("吊销， 未注销", "revoked"),
        ("撤销", "revoked"),
        ("吊销，已注销", "deregistered"),
        ("注销", "deregistered"),
        ("迁出", "moved_out"),
        ("迁往市外", "moved_out"),
        ("状态不详", "状态不详"),  # unknown: kept as written, so validation quarantines it with the original text
    ],
)
def test_statuses_as_systems_print_them(written, status):
    raw = pl.DataFrame({"status": [written], "source_file": ["T/objects.csv"], "source_line": [2]})
    assert normalise_registry(raw, "objects", "T")["status"].to_list() == [status]


@pytest.mark.parametrize(
    "written, code",
    [
        ("440305", "440305"),
        ("南山区", "440305"),
        ("深圳市南山区", "440305"),
        ("广东省深圳市南山区", "440305"),
        ("南山", "440305"),
        ("大鹏新区", "440307"),
        ("龙华新区", "440309"),
        ("４４０３０５", "440305"),
        ("广州市天河区", "广州市天河区"),  # another city: not this table's, so validation says district_unknown
    ],
)
def test_districts_by_code_or_name(written, code):
    assert district_code_of(written) == code


def test_a_blank_district_is_taken_from_the_address_when_it_names_one():
    assert district_in_address("深圳市龙华新区观澜高新技术产业园") == "440309"
    assert district_in_address("深圳市前海深港合作区前湾一路1号") == "440305"
    assert district_in_address("深圳市福田区南山大道1号") == "440304"  # 南山大道 is a road, not 南山区
    assert district_in_address("深圳市福田区与南山区交界") is None  # two districts: not guessed
    got = district_column(pl.Series([None, "福田区", None]), pl.Series(["深圳市坪山区比亚迪路3009号", "x", "无"]))
    assert got.to_list() == ["440310", "440304", None]


@pytest.mark.parametrize(
    "written, code",
    [
        ("I6513", "I6513"),
        ("6513", "I6513"),
        ("I65", "I65"),
        ("65", "I65"),
        ("[6513]", "I6513"),
        ("i 6513", "I6513"),
        ("【6513】", "I6513"),
        ("6513 应用软件开发", "I6513"),
        ("0111", "A0111"),
        ("H", "H"),
        ("餐饮业", "H62"),
        ("应用软件开发", "I6513"),  # the standard's name alone
        ("F6513", "F6513"),
        ("9901", "9901"),  # kept for validation to reject
    ],
)
def test_industries_in_every_written_form(written, code):
    assert normalise_industry(written) == code


def test_industry_reasons_name_the_problem():
    codes = pl.Series(["I6513", "H", "C1311", "I6510", "F6513", "F95", "9901", "X12", "其他"])
    # I6510 is a GB/T 4754-2011 class: accepted under its division 65
    assert industry_reasons(codes).to_list() == [
        None,
        None,
        None,
        None,
        "industry_section_mismatch",
        "industry_section_mismatch",
        "industry_unknown",
        "industry_unknown",
        "industry_unknown",
    ]


def test_one_code_is_valid_exactly_when_a_frame_of_them_says_so():
    """The plan's check of its few scope codes (`is_valid_industry`, no frame) agrees with the frame's
    (`industry_reasons`) on every code of the standard in its normalised form, with a digit more and less, and
    on odd ones (full-width digits, a trailing line break, spaces, no section letter)."""
    table = industries()
    normalised = [normalise_industry(c) or "" for c in table["code"]]
    odd = ["H62\n", "H６2", " H62", "H62 ", "6201", "", "Z", "I6510", "F6513", "X12", "其他"]
    codes = normalised + [c + "1" for c in normalised] + [c[:-1] for c in normalised] + odd
    assert [is_valid_industry(c) for c in codes] == industry_reasons(pl.Series(codes)).is_null().to_list()
    assert sum(map(is_valid_industry, normalised)) == table.height  # every code of the standard is valid


def test_the_industry_table_is_the_whole_standard():
    counts = dict(industries().group_by("level").len().iter_rows())
    assert counts == {
        "section": 20,
        "division": 97,
        "group": 473,
        "class": 1382,
    }  # 1,381 classes + 9231 (2019 amendment)
    divisions = industries().filter(pl.col("level") == "division")
    ranges = {"A": (1, 5), "C": (13, 43), "F": (51, 52), "I": (63, 65), "S": (91, 96), "T": (97, 97)}
    for section, (lo, hi) in ranges.items():
        assert sorted(int(c) for c in divisions.filter(pl.col("section") == section)["code"]) == list(range(lo, hi + 1))


def test_a_plan_notice_names_each_scope_code_by_the_standard():
    # a class, a division and a section letter (the plan's forms: transforms/draw.py scopes), and codes that are not
    assert industry_name("I6513") == "应用软件开发"
    assert industry_name("I65") == "软件和信息技术服务业"
    assert industry_name("I") == "信息传输、软件和信息技术服务业"
    assert industry_name("I9999") is None and industry_name("Z") is None


@pytest.mark.parametrize(
    "written",
    [
        "'91440300708461136T",
        "91440300708461136T\t",
        "\t91440300708461136T",
        "9144030070\u200b8461136T",
        "\ufeff91440300708461136T",
        '="91440300708461136T"',
    ],
)
def test_codes_systems_protect_from_spreadsheets_are_normalised(written):
    assert pl.select(normalise_code(pl.lit(written))).item() == "91440300708461136T"


@pytest.mark.parametrize(
    ("written", "normal"),
    [("''", "''"), ("'", None), ('=""', None), ('="\'X"', '="\'X"'), ('\'="X"', "X"), ('="X', '="X')],
)
def test_a_guard_is_removed_once_and_only_when_what_it_guarded_is_not_guarded_again(written, normal):
    # `''` once became `'` and then nothing: normalising twice must give what normalising once gave
    once = pl.select(normalise_code(pl.lit(written))).item()
    assert once == normal and pl.select(normalise_code(pl.lit(once, dtype=pl.String))).item() == normal


def test_a_uscc_a_spreadsheet_stored_as_a_number_has_its_own_reason():
    # 914403001922038216 (华为技术有限公司) in a number cell reads back as 914403001922038272
    codes = pl.Series(["914403001922038272", "9.14403E+17", "914403001922038216", "914403001922038217"])
    assert uscc_reasons(codes).to_list() == ["uscc_stored_as_number", "uscc_stored_as_number", None, "uscc_check_char"]
