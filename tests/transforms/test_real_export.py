"""A market-regulation system's export of real Shenzhen companies (data/samples/market_regulation_export/,
written by hand from public records, not by our generator) is accepted row for row.

The sample is GBK CSV and XLSX as such systems export them: a title row and a blank row above the
header, 序号 and the columns exports carry (法定代表人, 注册资本, 登记机关, 核准日期), registered types
in full- and half-width brackets, with and without a type code, statuses in several systems' words,
districts as codes, names and 广东省深圳市… or blank (the address names it), industries as I6513,
6621, [3612] and J66, one code behind an apostrophe, one with a trailing tab (CSV) or a zero-width
space (XLSX), and the count and exporter notes below the data.
"""

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from jointdraw.transforms.contract.frames import validation_frame
from jointdraw.transforms.contract.quarantine import accepted_rows, file_verdicts
from jointdraw.transforms.contract.suites import object_rules
from jointdraw.transforms.contract.validation import Contract
from jointdraw.transforms.normalise import normalise_registry, raw_to_keep
from jointdraw.transforms.storage.registry_files import RegistryFile, read_registry

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "samples" / "market_regulation_export"
RULES = object_rules(dt.date(2026, 11, 30))
# uscc → (category, registered type code, status, district, industry) as the sample's rows say them
EXPECTED = {
    "91440300100012316L": ("enterprise", "1210", "active", "440304", "J6920"),
    "9144030010001686XA": ("enterprise", "1210", "active", "440304", "J6621"),
    "91440300192181490G": ("enterprise", "1210", "active", "440308", "K7010"),
    "91440300192317458F": ("enterprise", "1210", "active", "440310", "C3612"),  # district from 深圳市坪山区… address
    "91440300192185379H": ("enterprise", "1210", "active", "440303", "J66"),
    "9144030071526726XG": ("enterprise", "6150", "active", "440305", "I6513"),
    "91440300708461136T": ("enterprise", "1130", "active", "440305", "I6429"),
    "914403001922038216": ("enterprise", "1152", "active", "440307", "C3921"),
    "914403007954257495": ("enterprise", "1130", "active", "440305", "C3963"),
    "9144030071529193X1": ("enterprise", "6110", "active", "440305", "C3951"),  # 前海深港合作区 is in 南山区
    "914403007230430398": ("enterprise", "5220", "active", "440309", "C3990"),
    "9144030078278219X2": ("enterprise", "2210", "active", "440304", "J6621"),
    "91440300748856239Q": ("enterprise", "2213", "active", "440304", "I6311"),
    "914403005930447881": ("enterprise", "4533", "deregistered", "440305", "L7212"),
}


@pytest.fixture(scope="module")
def contract():
    return Contract.ephemeral()


@pytest.mark.parametrize("name", ["objects.csv", "objects.xlsx"])
def test_every_row_of_a_real_export_is_accepted_as_what_it_is(contract, name):
    raw = read_registry(RegistryFile("AMR", "objects", SAMPLE / name, f"AMR/{name}"))
    assert raw.encoding == ("gb18030" if name.endswith(".csv") else "xlsx")
    # the title and blank row above the header, the blank row and two notes below: skipped and listed
    assert [(s.line, s.why) for s in raw.skipped] == [
        (1, "title"),
        (2, "blank"),
        (18, "blank"),
        (19, "note"),
        (20, "note"),
    ]
    assert raw.frame["source_line"].to_list() == list(range(4, 18))  # the spreadsheet's rows
    assert {"法定代表人", "注册资本", "登记机关", "核准日期", "序号"} <= set(raw.unmapped_headers)
    typed = normalise_registry(raw.frame, "objects", "AMR")
    result = contract.validate(f"real-export-{name}", validation_frame(typed, "objects", RULES), RULES)
    kept = raw_to_keep(raw.frame, typed, "objects")
    verdicts = file_verdicts(typed.lazy(), kept.lazy(), result.results, RULES, "objects")
    assert verdicts.quarantined.is_empty(), verdicts.quarantined.select("source_line", "reason", "column")
    accepted = accepted_rows(typed, verdicts.at)
    got = {
        r["uscc"]: (r["entity_type"], r["registered_type_code"], r["status"], r["district_code"], r["industry_code"])
        for r in accepted.iter_rows(named=True)
    }
    assert got == EXPECTED
    assert not accepted["type_conflict"].any()
    assert set(accepted["registered_type"]) >= {
        "股份有限公司（上市）",
        "有限责任公司（台港澳法人独资）",
        "有限合伙企业",
    }


def test_sections_come_from_the_division_whatever_the_form(contract):
    raw = read_registry(RegistryFile("AMR", "objects", SAMPLE / "objects.csv", "AMR/objects.csv"))
    typed = normalise_registry(raw.frame, "objects", "AMR")
    # 6621 → J6621 (banking), [3612] → C3612 (new-energy vehicles), J66 kept as the division
    assert typed.filter(pl.col("source_line").is_in([5, 7, 8]))["industry_code"].to_list() == ["J6621", "C3612", "J66"]
