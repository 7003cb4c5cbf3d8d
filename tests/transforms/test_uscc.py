import polars as pl
import pytest

from jointdraw.transforms.uscc import (
    complete_uscc,
    normalise_code,
    org_code_reasons,
    reg_no_reasons,
    uscc_problem,
    uscc_reasons,
)

# 91350100M000100Y43, worked by hand (SPEC §3):
#   values 9 1 3 5 0 1 0 0 M=21 0 0 0 1 0 0 Y=30 4, weights 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
#   Σ = 9+3+27+135+0+26+0+0+420+0+0+0+8+0+0+900+112 = 1640; 1640 mod 31 = 28; (31-28) mod 31 = 3 → '3'.
#   embedded organization code M000100Y-4: M=22, Y=34 (A=10 … Z=35), weights 3 7 9 10 5 8 4 2:
#   66+0+0+0+5+0+0+68 = 139; 139 mod 11 = 7; 11-7 = 4 → '4'.
VALID = "91350100M000100Y43"


def test_hand_computed_uscc_is_valid():
    assert uscc_problem(VALID) is None


@pytest.mark.parametrize(
    "code, reason",
    [
        ("91350100M000100Y44", "uscc_check_char"),  # last char changed
        ("91350100M000100Y4", "uscc_length"),
        ("91350100M000100YI3", "uscc_charset"),  # I is not in the charset
        ("91350100S000100Y43", "uscc_charset"),  # nor is S
        ("B1350100M000100Y43", "uscc_authority"),  # B is not a registration authority
        # org check char 4 → 5 with the final check recomputed: only the embedded check fails
        (complete_uscc("91350100M000100Y5"), "uscc_org_check"),
    ],
)
def test_each_rule_has_its_own_reason(code, reason):
    assert uscc_problem(code) == reason


@pytest.mark.parametrize("first", ["A", "N", "Y"])
def test_authorities_a_n_y_and_ma_codes_are_legitimate(first):
    # the same organization code under another authority: valid once the check is recomputed
    code = complete_uscc(first + VALID[1:17])
    assert code[8:10] == "M0" and uscc_problem(code) is None
    # a post-2015 `MA` organization code: MA5DC6QX → 3·22+7·10+9·5+10·13+5·12+8·6+4·26+2·33 = 589;
    # 589 mod 11 = 6; 11-6 = 5 → MA5DC6QX-5
    assert uscc_problem(complete_uscc(first + "1440300MA5DC6QX5")) is None


def test_nulls_stay_null_and_the_column_is_checked_at_once():
    got = uscc_reasons(pl.Series([VALID, None, "91350100M000100Y44"]))
    assert got.to_list() == [None, None, "uscc_check_char"]


def test_normalisation_handles_case_spaces_and_full_width():
    raw = pl.Series([" 91350100m000100y43 ", "９１３５０１００Ｍ０００１００Ｙ４３", "9135 0100M000100Y43", ""])
    got = pl.select(normalise_code(pl.lit(raw))).to_series()
    assert got.to_list() == [VALID, VALID, VALID, None]


def test_organization_code_check():
    # 60003734-1: 6·3+0+0+0+3·5+7·8+3·4+4·2 = 18+15+56+12+8 = 109; 109 mod 11 = 10; 11-10 = 1
    assert org_code_reasons(pl.Series(["600037341", "600037342", "60003734", None])).to_list() == [
        None,
        "org_code_check",
        "org_code_format",
        None,
    ]


def test_registration_number_mod_11_10():
    # ISO 7064 MOD 11,10 over 44030110000001: p ends at 5, so the check digit c solves (5 + c) mod 10 = 1 → 6
    assert reg_no_reasons(pl.Series(["440301100000016", "440301100000017", "44030110000001X"])).to_list() == [
        None,
        "reg_no_check",
        "reg_no_format",
    ]
