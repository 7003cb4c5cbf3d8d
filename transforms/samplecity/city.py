"""A synthetic city like Shenzhen: the registries its departments would submit, and a plan.

`generate_city(n_objects, seed)` makes frames; `write_city` writes them as an inbox in
the mixed formats departments really use. Everything is vectorised numpy/polars and
driven by one seeded PCG64 generator, so the same arguments give the same bytes.

Entities are made CHUNK_ENTITIES at a time (`chunk_sizes`): each chunk's entities and listings,
then the next chunk's, from the same generator; what the plan and the inspectors need of the
whole city (pattern counts, directory sizes, a sample of each directory) is accumulated across
chunks, and organization codes are numbered over the whole city, so USCCs stay unique. Handed
an `emit`, `generate_city` gives away every chunk's objects but the last as it makes them, so a
province is written (`submission.write_generated_city`) in the memory of a chunk. A city of one
chunk is made with exactly the draws it always was.

`n_objects` counts object rows across all departments' directories (the platform's
"about 8 million inspection objects"); an entity listed by three departments counts
three times. Entities ≈ n_objects / 1.3.

It speaks the registries' real vocabulary: industries are real GB/T 4754-2017 classes (uniform
within a section), entity types are registered types of the type-code table in realistic shares
(有限责任公司（自然人投资或控股）, 个人独资企业, 分公司, 外商投资 …), and the plan's 定向 tasks name
real divisions and groups. How each department writes them (codes or names, its own status words)
is `submission.DIALECTS`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import cache

import numpy as np
import polars as pl

from jointdraw.transforms.industry import industries
from jointdraw.transforms.plan import (
    AssignRules,
    ClassRatio,
    KpiTargets,
    Period,
    Plan,
    PolicyBand,
    Scope,
    Task,
    VisitCaps,
)
from jointdraw.transforms.reference import department_names, district_codes, reference_table
from jointdraw.transforms.samplecity.inspections import make_inspections
from jointdraw.transforms.uscc import USCC_CHARSET, org_check_chars, uscc_check_char_values

# Share of entities by GB/T 4754 section (a Shenzhen-like mix: trade and services dominate).
INDUSTRY_MIX = {
    "A": 0.3,
    "B": 0.05,
    "C": 10,
    "D": 0.2,
    "E": 3,
    "F": 36,
    "G": 3,
    "H": 8,
    "I": 8,
    "J": 1,
    "K": 2,
    "L": 12,
    "M": 8,
    "N": 0.5,
    "O": 5,
    "P": 0.6,
    "Q": 0.6,
    "R": 1.5,
    "S": 0.3,
    "T": 0.01,
}
ENTITY_TYPES = {"enterprise": 0.55, "individual": 0.425, "cooperative": 0.005, "other": 0.02}
# Registered types (企业类型代码, data/reference/entity_types.csv) within a category, by share: most
# enterprises are small limited companies held by natural persons; branches, sole proprietorships,
# partnerships and foreign-invested companies make up the rest.
REGISTERED_TYPES = {
    "enterprise": {
        "1130": 40,
        "1151": 18,
        "1150": 3,
        "1152": 3,
        "1153": 2,
        "1190": 2,
        "1110": 0.3,
        "1140": 0.5,
        "1220": 1.5,
        "1222": 1,
        "1210": 0.1,
        "1212": 0.05,
        "2130": 4,
        "2100": 2,
        "2151": 1.5,
        "2220": 0.5,
        "4540": 6,
        "4533": 2.5,
        "4531": 1,
        "4560": 0.3,
        "3100": 0.4,
        "3200": 0.4,
        "4310": 0.2,
        "6150": 2.5,
        "6110": 0.8,
        "6140": 0.8,
        "5150": 1.5,
        "5110": 0.6,
        "5140": 0.5,
        "6810": 0.3,
        "7310": 0.1,
    },
    "individual": {"9500": 1},
    "cooperative": {"9100": 0.95, "9200": 0.05},
    "other": {
        "事业单位": 0.4,
        "社会团体": 0.25,
        "民办非企业单位": 0.3,
        "基金会": 0.05,
    },  # not registered by market regulation
}
CREDIT_MIX = {"A": 0.20, "B": 0.70, "C": 0.08, "D": 0.02}  # most B, few D
STATUS_MIX = {"active": 0.92, "deregistered": 0.05, "revoked": 0.02, "moved_out": 0.01}
# Which departments list an entity, by industry section: P(listed | section).
LISTINGS: dict[str, dict[str, float]] = {
    "ENV": {"B": 0.8, "C": 0.35, "D": 0.6, "N": 0.4, "H": 0.03, "O": 0.05},
    "EMR": {"B": 0.9, "C": 0.3, "F": 0.03, "G": 0.1, "D": 0.2},
    "HLT": {"H": 0.4, "Q": 0.9, "O": 0.15, "P": 0.2, "R": 0.2},
    "HSG": {"E": 0.9, "K": 0.7},
    "TRN": {"G": 0.7},
    "CUL": {"R": 0.8, "I": 0.05, "L": 0.05, "H": 0.05},
    "FIR": {"H": 0.35, "F": 0.05, "R": 0.5, "P": 0.3, "Q": 0.2, "C": 0.08, "L": 0.02},
    "HRS": {"L": 0.1, "C": 0.06, "E": 0.08, "F": 0.02, "I": 0.04},
    "URB": {"H": 0.1, "F": 0.03, "O": 0.05},
    "WAT": {"D": 0.4, "N": 0.3, "C": 0.03},
    "EDU": {"P": 0.8},
}
# Licence tags by section (P(tag | section)) and the special list 经营异常名录.
TAGS = {
    "食品经营许可证": {"H": 0.9, "F": 0.15},
    "排污许可证": {"C": 0.3, "D": 0.5},
    "危险化学品经营许可证": {"C": 0.05, "F": 0.01},
    "医疗机构执业许可证": {"Q": 0.8},
    "娱乐经营许可证": {"R": 0.4},
    "特种设备使用登记": {"C": 0.2, "G": 0.1, "K": 0.2},
}
ABNORMAL_LIST = "经营异常名录"
# Submission format per department: (format, header language). XLSX falls back to CSV when too big.
FORMATS = {
    "AMR": ("csv-utf8", "en"),
    "ENV": ("csv-gbk", "zh"),
    "EMR": ("xlsx", "zh"),
    "HLT": ("parquet", "en"),
    "HSG": ("csv-utf8-bom", "zh"),
    "TRN": ("xlsx", "en"),
    "CUL": ("csv-gbk", "zh"),
    "FIR": ("parquet", "en"),
    "HRS": ("csv-utf8", "en"),
    "URB": ("xlsx", "zh"),
    "WAT": ("csv-gbk", "zh"),
    "EDU": ("csv-utf8-bom", "en"),
}
XLSX_MAX_ROWS = 200_000
CHUNK_ENTITIES = 1_000_000  # entities made (and written) at a time: a city of more is made in chunks
CONFLICT_POOL = 100_000  # a city of several chunks draws inspectors' conflicts from this many of a directory's USCCs
PLAN_YEAR = 2026
ITEMS_PER_DEPARTMENT = {
    "AMR": 41,
    "ENV": 60,
    "EMR": 58,
    "HLT": 62,
    "HSG": 55,
    "TRN": 48,
    "CUL": 46,
    "FIR": 52,
    "HRS": 40,
    "URB": 44,
    "WAT": 42,
    "EDU": 32,
}  # 580 in all
BUSINESS_LINES = {
    "AMR": 21,
    "ENV": 8,
    "EMR": 8,
    "HLT": 9,
    "HSG": 7,
    "TRN": 6,
    "CUL": 6,
    "FIR": 7,
    "HRS": 5,
    "URB": 6,
    "WAT": 5,
    "EDU": 4,
}
# A 定向 task targets this year's focus: the first m/FOCUS_STEPS of the GB/T 4754 groups (中类) of
# its items' sections, written as whole divisions where a division is covered entirely (F52
# 零售业, H62 餐饮业, C14 食品制造业), so eligible sets are a share of a directory and class ratios
# stay in their usual bands; m is tuned so fusion saves about 10% of visits.
FOCUS_STEPS = 60
UNDIRECTED = ("EDU", "WAT")
TARGET_DRAW_SHARE = 0.01  # a city plan draws about 1% of object rows
TARGET_REDUCTION = 0.10  # and fusion saves about 10% of visits (Shenzhen 2021: 10.39%)

_TRADE_CHARS = list("华润腾讯安达顺丰美佳鑫盛泰和兴隆宏祥瑞福源创新科技联合众信德诚恒通海天星光明远金银富康乐嘉豪恒丰")
_SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蔡蒋余于杜叶程苏魏吕丁任沈姚卢"
)
_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力斌宇浩凯鹏飞云峰晨欣怡佳雪梅琳")
_ROADS = [
    "深南大道",
    "滨海大道",
    "北环大道",
    "宝安大道",
    "龙岗大道",
    "布龙路",
    "梅观路",
    "沙河西路",
    "科苑路",
    "建设路",
    "人民路",
    "东门路",
    "红岭路",
    "华强北路",
    "新安路",
    "南海大道",
    "留仙大道",
    "坪山大道",
    "光明大道",
]
_INDUSTRY_WORDS = {
    "A": "农业",
    "B": "矿业",
    "C": "制造",
    "D": "能源",
    "E": "建筑工程",
    "F": "贸易",
    "G": "物流",
    "H": "餐饮管理",
    "I": "信息技术",
    "J": "投资",
    "K": "房地产开发",
    "L": "商务咨询",
    "M": "技术服务",
    "N": "环境工程",
    "O": "家政服务",
    "P": "教育咨询",
    "Q": "医疗",
    "R": "文化传播",
    "S": "社会服务",
    "T": "国际交流",
}
_SHOP_WORDS = {"F": "便利店", "H": "餐馆", "O": "理发店", "G": "货运部", "C": "加工厂", "R": "棋牌室"}
_DISTRICT_NAMES = {
    "440303": "罗湖区",
    "440304": "福田区",
    "440305": "南山区",
    "440306": "宝安区",
    "440307": "龙岗区",
    "440308": "盐田区",
    "440309": "龙华区",
    "440310": "坪山区",
    "440311": "光明区",
}
_DISTRICT_WEIGHTS = {
    "440303": 0.08,
    "440304": 0.14,
    "440305": 0.15,
    "440306": 0.2,
    "440307": 0.18,
    "440308": 0.02,
    "440309": 0.13,
    "440310": 0.04,
    "440311": 0.06,
}
_CAPITALS = ["1", "3", "5", "10", "30", "50", "100", "200", "500", "1000", "5000"]
_SCOPES = {s: f"{w}相关业务；国内贸易（不含专营、专卖、专控商品）。" for s, w in _INDUSTRY_WORDS.items()}
# columns real exports carry beyond the registry's (法定代表人, 注册资本, 登记机关, 经营范围, 核准日期)
EXTRA_COLUMNS = (
    "legal_representative",
    "registered_capital",
    "registration_authority",
    "business_scope",
    "approved_on",
)
_CLASS_WEIGHT = {"A": 0.5, "B": 1.0, "C": 3.0, "D": 10.0}  # relative draw ratios by credit class
# floors (min_count) by department and class: every ratio task of the market regulator draws at least 2
# high-risk (D) objects where it has 2 (binds in small strata: the demo city's, not a city of millions)
_FLOORS = {"AMR": {"D": 2}}


@cache
def codes_by_section(level: str) -> dict[str, list[str]]:
    """Section → its GB/T 4754-2017 codes of one level (group: F521, class: I6513), normalised, in the
    standard's order."""
    t = industries().filter(pl.col("level") == level)
    out: dict[str, list[str]] = {}
    for code, section in t.select("code", "section").iter_rows():
        out.setdefault(section, []).append(section + code)
    return out


def focus_prefixes(section: str, m: int) -> list[str]:
    """The first m/FOCUS_STEPS of a section's groups (at least one), each division whose groups are
    all in written as the division: what a 定向 task of that focus names."""
    groups = codes_by_section("group")[section]
    chosen = groups[: max(1, -(-len(groups) * m // FOCUS_STEPS))]
    out: list[str] = []
    for division in dict.fromkeys(g[:3] for g in chosen):
        of_division = [g for g in groups if g.startswith(division)]
        out += [division] if all(g in chosen for g in of_division) else [g for g in chosen if g.startswith(division)]
    return out


def _registered_types(rng: np.random.Generator, category: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(registered type name, its code or '') per entity, drawn from REGISTERED_TYPES by category."""
    table = reference_table("entity_types")
    names = dict(zip(table["code"], table["name_zh"], strict=True))
    name = np.empty(len(category), dtype=object)
    code = np.full(len(category), "", dtype=object)
    for cat, mix in REGISTERED_TYPES.items():
        rows = np.flatnonzero(category == cat)
        picked = _choice(rng, mix, len(rows))
        code[rows] = np.where(np.char.isdigit(picked.astype(str)), picked, "")
        name[rows] = [names.get(p, p) for p in picked]
    return name.astype(str), code.astype(str)


@dataclass(frozen=True)
class City:
    """Every department's registries as frames (SPEC §2 column names) and the plan. (Made with an
    `emit`, its `objects` are the last chunk's: `generate_city`.)"""

    objects: dict[str, pl.DataFrame]
    inspectors: dict[str, pl.DataFrame]
    items: dict[str, pl.DataFrame]
    plan: Plan
    expected_reduction: float  # the plan's expected reduction rate under independent draws
    inspections: dict[str, pl.DataFrame] = field(default_factory=dict)  # what INSPECTING departments report


def _choice(rng: np.random.Generator, mix: dict[str, float], n: int) -> np.ndarray:
    keys = list(mix)
    p = np.array([mix[k] for k in keys], dtype=float)
    return np.array(keys)[rng.choice(len(keys), size=n, p=p / p.sum())]


def _by_section(section: np.ndarray, probability: dict[str, float]) -> np.ndarray:
    """Per row, the probability its industry section has in `probability` (0 when absent)."""
    sections = sorted(INDUSTRY_MIX)
    table = np.array([probability.get(s, 0.0) for s in sections])
    return table[np.searchsorted(np.array(sections), section)]


def _pick(rng: np.random.Generator, pool: list[str], n: int) -> pl.Series:
    return pl.Series(pool, dtype=pl.String).gather(rng.integers(0, len(pool), n))


class UsccNumbering:
    """The affine maps mod m (10^8 for old organization codes, 31^6 for `MA…` ones) that give each
    entity index a distinct, random-looking number below m. Each map is drawn from the generator the
    first time it is asked for (in the first chunk, where a city of one chunk always drew it) and is
    the same for every later chunk: entity i has its number whatever chunk it is made in, so codes
    stay unique across chunks."""

    def __init__(self) -> None:
        self._maps: dict[int, tuple[int, int]] = {}

    def __call__(self, i: np.ndarray, modulus: int, rng: np.random.Generator) -> np.ndarray:
        if modulus not in self._maps:
            while True:
                a = int(rng.integers(modulus // 3, modulus - 1))
                if np.gcd(a, modulus) == 1:
                    break
            self._maps[modulus] = (a, int(rng.integers(0, modulus)))
        a, b = self._maps[modulus]
        return (a * i.astype(np.int64) + b) % modulus  # a·i < 2^63 for the moduli used here (≤ 31^6) and i < 10^9


def _digits(values: np.ndarray, base: int, width: int) -> np.ndarray:
    """(n, width) matrix of base-`base` digits of `values`, most significant first."""
    out = np.empty((len(values), width), dtype=np.int64)
    v = values.astype(np.int64)
    for j in range(width - 1, -1, -1):
        out[:, j] = v % base
        v = v // base
    return out


def make_usccs(
    rng: np.random.Generator,
    entity_type: np.ndarray,
    new_style: np.ndarray,
    start: int = 0,
    numbering: UsccNumbering | None = None,
) -> pl.Series:
    """Unique, valid USCCs: position 1–2 by entity type, 3–8 a registering authority's
    division, 9–17 an organization code (old 8-digit or post-2015 `MA…`), 18 the check. The
    entities are the city's `start`, `start` + 1, …: codes made by one `numbering` are unique
    across calls for distinct entities (at most 10^8 in a city)."""
    n = len(entity_type)
    numbering = numbering or UsccNumbering()
    val = {c: i for i, c in enumerate(USCC_CHARSET)}
    first = np.empty((n, 2), dtype=np.int64)
    first[:] = [val["9"], val["1"]]
    first[entity_type == "individual"] = [val["9"], val["2"]]
    first[entity_type == "cooperative"] = [val["9"], val["3"]]
    other = np.flatnonzero(entity_type == "other")
    other_heads = np.array(
        [
            [val["5"], val["1"]],
            [val["5"], val["2"]],
            [val["1"], val["1"]],
            [val["A"], val["1"]],
            [val["N"], val["2"]],
            [val["Y"], val["1"]],
        ]
    )
    first[other] = other_heads[rng.integers(0, len(other_heads), len(other))]
    authorities = [
        "440300",
        "440303",
        "440304",
        "440305",
        "440306",
        "440307",
        "440308",
        "440309",
        "440310",
        "440311",
        "440100",
        "440600",
    ]
    auth = np.array([[int(ch) for ch in a] for a in authorities])[
        rng.choice(len(authorities), n, p=np.array([40, 6, 8, 8, 10, 9, 1, 7, 2, 3, 3, 3]) / 100)
    ]
    idx = np.arange(start, start + n)
    body = np.empty((n, 8), dtype=np.int64)
    old = np.flatnonzero(~new_style)
    body[old] = _digits(numbering(idx[old], 10**8, rng), 10, 8)
    new = np.flatnonzero(new_style)
    body[new, 0], body[new, 1] = val["M"], val["A"]
    body[new, 2:] = _digits(numbering(idx[new], 31**6, rng), 31, 6)
    # organization-code values: digit → itself, letter → A=10 … (USCC charset letters are a subset)
    org_values = np.array([int(c, 36) for c in USCC_CHARSET])[body]
    org_check = org_check_chars(np.ascontiguousarray(org_values.T))
    org_check_val = np.zeros(256, dtype=np.int64)  # check char ('0'-'9', 'X') → its USCC value
    for c in "0123456789X":
        org_check_val[ord(c)] = val[c]
    first17 = np.concatenate([first, auth, body, org_check_val[org_check][:, None]], axis=1)
    full = np.concatenate([first17, uscc_check_char_values(np.ascontiguousarray(first17.T))[:, None]], axis=1)
    chars = np.frombuffer(USCC_CHARSET.encode(), dtype=np.uint8)[full]
    return pl.Series("uscc", chars.view("S18").ravel()).cast(pl.String)


def _dates(rng: np.random.Generator, start: dt.date, end: dt.date, n: int, skew: float = 1.0) -> np.ndarray:
    span = (end - start).days
    offsets = (rng.random(n) ** skew * span).astype(np.int64)
    return np.datetime64(start) + offsets.astype("timedelta64[D]")


def make_entities(
    rng: np.random.Generator, n: int, start: int = 0, numbering: UsccNumbering | None = None
) -> pl.DataFrame:
    """One row per entity of the city's `start` … `start` + n − 1, with the attributes the market
    regulator registers (USCCs numbered by `numbering`: pass one per city)."""
    section = _choice(rng, INDUSTRY_MIX, n)
    etype = _choice(rng, ENTITY_TYPES, n)
    registered = _dates(rng, dt.date(1990, 1, 1), dt.date(2026, 10, 31), n, skew=0.45)
    new_style = registered >= np.datetime64("2015-10-01")
    district = _choice(rng, _DISTRICT_WEIGHTS, n)
    credit = _choice(rng, CREDIT_MIX, n)
    tag_lists = []
    for tag, by_section in TAGS.items():
        p = _by_section(section, by_section)
        tag_lists.append(np.where(rng.random(n) < p, tag, ""))
    abnormal = rng.random(n) < np.select([credit == "D", credit == "C"], [0.5, 0.15], 0.005)
    tag_lists.append(np.where(abnormal, ABNORMAL_LIST, ""))
    registered_type, registered_type_code = _registered_types(rng, etype)
    df = pl.DataFrame(
        {
            "uscc": make_usccs(rng, etype, new_style, start, numbering),
            "section": section.astype(str),
            "entity_type": etype.astype(str),
            "registered_type": registered_type,
            "registered_type_code": registered_type_code,
            "district_code": district.astype(str),
            "registered_on": registered,
            "status": _choice(rng, STATUS_MIX, n).astype(str),
            "credit_risk": credit.astype(str),
            **{f"_tag{i}": t for i, t in enumerate(tag_lists)},
        }
    )
    by_section = codes_by_section("class")
    industry = np.empty(n, dtype=object)
    for s in np.unique(section):  # a class of the entity's section, uniformly
        rows = np.flatnonzero(section == s)
        industry[rows] = np.array(by_section[s])[rng.integers(0, len(by_section[s]), len(rows))]
    trade = _pick(rng, _TRADE_CHARS, n) + _pick(rng, _TRADE_CHARS, n)
    branch = pl.Series(np.where(rng.random(n) < 0.08, "（深圳）", ""))
    second_given = _pick(rng, _GIVEN, n).zip_with(pl.Series(rng.random(n) < 0.5), pl.Series([""] * n))
    person = _pick(rng, _SURNAMES, n) + _pick(rng, _GIVEN, n) + second_given
    df = df.with_columns(
        industry_code=pl.Series(industry.astype(str)),
        trade=trade,
        branch=branch,
        operator_name=person,
        road=_pick(rng, _ROADS, n),
        number=pl.Series(rng.integers(1, 3000, n)),
        phone=pl.lit("1")
        + pl.Series(rng.choice(["3", "5", "8"], n))
        + pl.Series(rng.integers(0, 10**9, n)).cast(pl.String).str.zfill(9),
        tags=pl.concat_list([f"_tag{i}" for i in range(len(tag_lists))]).list.filter(pl.element() != ""),
    ).drop([f"_tag{i}" for i in range(len(tag_lists))])
    district_name = pl.col("district_code").replace_strict(_DISTRICT_NAMES)
    industry_word = pl.col("section").replace_strict(_INDUSTRY_WORDS)
    shop_word = pl.col("section").replace_strict(_SHOP_WORDS, default="商行")
    rtype = pl.col("registered_type")
    district_short = district_name.str.strip_suffix("区")
    name = (
        pl.when(rtype.str.contains("分公司|分支机构"))
        .then(
            pl.concat_str(
                pl.lit("深圳市"), "trade", industry_word, pl.lit("有限公司"), district_short, pl.lit("分公司")
            )
        )
        .when(rtype.str.contains("股份"))
        .then(pl.concat_str(pl.lit("深圳市"), "trade", industry_word, pl.lit("股份有限公司")))
        .when(rtype.str.contains("合伙"))
        .then(
            pl.concat_str(
                pl.lit("深圳市"),
                "trade",
                industry_word,
                pl.when(rtype.str.contains("有限"))
                .then(pl.lit("合伙企业（有限合伙）"))
                .otherwise(pl.lit("合伙企业（普通合伙）")),
            )
        )
        .when(rtype == "个人独资企业")
        .then(pl.concat_str(pl.lit("深圳市"), "trade", industry_word, pl.lit("商行")))
        .when(rtype.str.contains("台港澳|外国|外商"))
        .then(pl.concat_str("trade", industry_word, pl.lit("（深圳）有限公司")))
        .when(rtype.str.contains("全民所有制|集体"))
        .then(pl.concat_str(pl.lit("深圳市"), "trade", industry_word, pl.lit("公司")))
        .when(pl.col("entity_type") == "enterprise")
        .then(pl.concat_str(pl.lit("深圳市"), "trade", "branch", industry_word, pl.lit("有限公司")))
        .when(pl.col("entity_type") == "individual")
        .then(pl.concat_str(district_name, "trade", shop_word))
        .when(pl.col("entity_type") == "cooperative")
        .then(
            pl.concat_str(
                pl.lit("深圳市"),
                "trade",
                pl.lit("农民专业合作社"),
                pl.when(rtype.str.contains("分支")).then(pl.lit("分社")).otherwise(pl.lit("")),
            )
        )
        .otherwise(pl.concat_str(pl.lit("深圳市"), "trade", industry_word, pl.lit("协会")))
    )
    address = pl.concat_str(
        pl.lit("广东省深圳市"), district_name, "road", pl.col("number").cast(pl.String), pl.lit("号")
    )
    individual = pl.col("entity_type") == "individual"
    market = pl.col("entity_type") != "other"
    approved = registered + (rng.random(n) * (np.datetime64("2026-10-31") - registered).astype(np.int64)).astype(
        "timedelta64[D]"
    )
    return df.with_columns(
        name=name,
        address=address,
        operator_name=pl.when(individual).then("operator_name"),
        phone=pl.when(individual).then("phone"),
        # what exports carry beside the registry's columns (ingest keeps them out of the typed table);
        # the repetitive ones as categoricals: at 8M rows they would otherwise take gigabytes
        legal_representative=pl.when(~individual).then(
            _pick(rng, _SURNAMES, n) + _pick(rng, _GIVEN, n) + _pick(rng, _GIVEN, n)
        ),
        registered_capital=pl.when(market & ~individual)
        .then(_pick(rng, _CAPITALS, n) + pl.lit("万元人民币"))
        .cast(pl.Categorical),
        registration_authority=pl.when(market)
        .then(pl.concat_str(pl.lit("深圳市市场监督管理局"), district_short, pl.lit("监管局")))
        .cast(pl.Categorical),
        business_scope=pl.concat_str(pl.lit("一般经营项目是："), pl.col("section").replace_strict(_SCOPES)).cast(
            pl.Categorical
        ),
        registered_type=pl.col("registered_type").cast(pl.Categorical),
        approved_on=pl.Series(approved),
    ).drop("trade", "branch", "road", "number")


def list_entities(rng: np.random.Generator, entities: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Each department's directory: the market regulator lists every market entity, the others
    those of their industries, with the small inconsistencies real registries have."""
    n = entities.height
    section = entities["section"].to_numpy()
    market = entities["entity_type"].is_in(["enterprise", "individual", "cooperative"]).to_numpy()
    out = {"AMR": entities.filter(pl.Series(market))}
    for dept, by_section in LISTINGS.items():
        p = _by_section(section, by_section)
        listed = entities.filter(pl.Series(rng.random(n) < p))
        m = listed.height
        # other departments' copies drift: half-width brackets, an old address, another class or district
        listed = listed.with_columns(
            name=pl.when(pl.Series(rng.random(m) < 0.5))
            .then(pl.col("name").str.replace("（", "(", literal=True).str.replace("）", ")", literal=True))
            .otherwise("name"),
            address=pl.when(pl.Series(rng.random(m) < 0.05))
            .then(pl.col("address").str.replace(r"(\d+)号$", "${1}0号"))
            .otherwise("address"),
            credit_risk=pl.when(pl.Series(rng.random(m) < 0.01)).then(pl.lit("C")).otherwise("credit_risk"),
            district_code=pl.when(pl.Series(rng.random(m) < 0.005)).then(pl.lit("440304")).otherwise("district_code"),
        )
        out[dept] = listed
    return out


# Departments whose lists have items that need an expert or a third-party institution on the team
# (issue 21): every tenth item from the fourth, in turn one of these fields (所需专家领域).
EXPERT_FIELDS = {"AMR": ["食品检验", "特种设备"], "HLT": ["公共卫生"], "ENV": ["环境监测"]}


def expert_field(department: str, item_number: int) -> str | None:
    """The field of expertise item `item_number` (from 1) of `department` requires, if any."""
    fields = EXPERT_FIELDS.get(department)
    if not fields or item_number % 10 != 4:
        return None
    return fields[(item_number // 10) % len(fields)]


def make_items() -> dict[str, pl.DataFrame]:
    """The joint item list (抽查事项清单): about 580 items over 12 departments, 21 business lines for AMR."""
    names = department_names()
    out = {}
    for dept, n_items in ITEMS_PER_DEPARTMENT.items():
        lines = BUSINESS_LINES[dept]
        sections = sorted(LISTINGS.get(dept, {}))
        rows = []
        for i in range(n_items):
            line = i % lines
            # the objects an item applies to: a section; 教育 and 水务 check their whole directory
            section = "FHCIOLME"[line % 8] if dept == "AMR" else sections[line % len(sections)] if sections else ""
            scope = "" if dept in UNDIRECTED or not section else f"industries={section}"
            rows.append(
                {
                    "item_id": f"{dept}-{i + 1:03d}",
                    "department": dept,
                    "business_line": f"{names[dept]}业务条线{line + 1}",
                    "name": f"{names[dept]}抽查事项{i + 1}",
                    "basis": f"《{names[dept][:-1] if names[dept].endswith('局') else names[dept]}"
                    f"监督管理条例》第{10 + i}条",
                    "category": "key" if i % 5 == 0 else "general",
                    "method": ["实地检查", "书面检查", "网络监测", "检验检测"][i % 4],
                    "scope": scope,
                    **({"expert": expert_field(dept, i + 1)} if dept in EXPERT_FIELDS else {}),
                }
            )
        out[dept] = pl.DataFrame(rows)
    return out


def _tasks(items: dict[str, pl.DataFrame], focus: int) -> list[Task]:
    """One task per business line: its items, its scope (定向: the focus divisions and groups of its
    items' sections) or none (不定向), class ratios to be set."""
    tasks = []
    for dept, df in items.items():
        for (line,), g in df.group_by("business_line", maintain_order=True):
            sections = sorted({s.split("=", 1)[1] for s in g["scope"].to_list() if s})
            scope = Scope(industries=[p for sec in sections for p in focus_prefixes(sec, focus)]) if sections else None
            number = int(str(line).rsplit("线", 1)[1])
            if dept == "URB":  # 城管 draws a fixed count in one district per line
                scope = Scope(industries=scope.industries if scope else [], districts=[district_codes()[number % 9]])
            tasks.append(
                Task(
                    task_id=f"{dept}-T{number:02d}",
                    department=dept,
                    title=f"{line}联合抽查",
                    items=g["item_id"].to_list(),
                    scope=scope,
                    ratio={c: 0.0 for c in "ABCD"},
                )
            )
    return tasks


def entity_patterns(entities: pl.DataFrame, listings: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Active entities grouped by what decides their draw chances: the departments that list
    them, section, industry group (中类), district and class. Some thousands of patterns stand for millions of rows,
    so the plan can be tuned in milliseconds. (Tuning only: the draw stage owns the rule.)"""
    active = entities.filter(pl.col("status") == "active").select(
        "uscc", "section", "district_code", "credit_risk", industry_group=pl.col("industry_code").str.slice(0, 4)
    )
    member = [
        active["uscc"].is_in(listings[d]["uscc"].filter(listings[d]["status"] == "active").implode()).alias(d)
        for d in listings
    ]
    return (
        active.with_columns(member)
        .group_by(["section", "industry_group", "district_code", "credit_risk", *listings])
        .len("n")
        .sort(pl.all())
    )


def _pattern_eligibility(tasks: list[Task], patterns: pl.DataFrame) -> np.ndarray:
    """(patterns × tasks) booleans: is an entity of this pattern in the task's eligible set."""
    cols = []
    for t in tasks:
        ok = patterns[t.department]
        if t.scope and t.scope.industries:  # focus divisions and groups of some sections
            group = patterns["industry_group"]
            ok = (
                ok
                & pl.select(
                    pl.any_horizontal([pl.lit(group).str.starts_with(p) for p in t.scope.industries])
                ).to_series()
            )
        if t.scope and t.scope.districts:
            ok = ok & patterns["district_code"].is_in(t.scope.districts)
        cols.append(ok.to_numpy())
    return np.stack(cols, axis=1)


def _floors(tasks: list[Task]) -> np.ndarray:
    """tasks × classes: each task's min_count per class (`_FLOORS`)."""
    return np.array([[_FLOORS.get(t.department, {}).get(c, 0) for c in "ABCD"] for t in tasks], dtype=float)


def _expected_k(ratios: np.ndarray, sizes: np.ndarray, floors: np.ndarray) -> np.ndarray:
    """tasks × classes: k = min(N, max(min_count, ceil(ratio·N))) (tuning only: transforms/strata.py owns the rule)."""
    return np.minimum(sizes, np.maximum(floors, np.ceil(np.round(ratios * sizes, 9))))


def _expected_figures(
    eligible: np.ndarray, patterns: pl.DataFrame, ratios: np.ndarray, floors: np.ndarray
) -> tuple[float, float]:
    """Expected draws and joint tasks when every task draws independently: an object of class c
    is drawn with p = k_c/N_c (`_expected_k`); draws = Σ p, joint tasks = Σ over entities of 1 − Π(1 − p)."""
    n = patterns["n"].to_numpy().astype(float)
    cls = patterns["credit_risk"].replace_strict({c: i for i, c in enumerate("ABCD")}, return_dtype=pl.Int64).to_numpy()
    onehot = np.eye(4)[cls]  # patterns × classes
    sizes = (eligible * n[:, None]).T @ onehot  # tasks × classes: N per stratum
    k = _expected_k(ratios, sizes, floors)
    p_task_class = np.divide(k, sizes, out=np.zeros_like(k), where=sizes > 0)
    p = eligible * (onehot @ p_task_class.T)  # patterns × tasks
    draws = float((p.sum(axis=1) * n).sum())
    joint = float(((1 - np.prod(1 - p, axis=1)) * n).sum())
    return draws, joint


def _tuned(items: dict[str, pl.DataFrame], patterns: pl.DataFrame, total_rows: int, focus: int) -> tuple:
    """Tasks with a focus of `focus`/FOCUS_STEPS of their sections' groups, their class ratios, and the
    expected reduction."""
    tasks = _tasks(items, focus)
    eligible = _pattern_eligibility(tasks, patterns)
    cls = patterns["credit_risk"].replace_strict({c: i for i, c in enumerate("ABCD")}, return_dtype=pl.Int64).to_numpy()
    sizes = (eligible * patterns["n"].to_numpy()[:, None]).T @ np.eye(4)[cls]  # tasks × classes
    # draws per task ∝ √(eligible size): big directories get lower ratios, small ones higher
    root = np.sqrt(sizes.sum(axis=1))
    budget = TARGET_DRAW_SHARE * total_rows * root / root.sum()
    w = np.array([_CLASS_WEIGHT[c] for c in "ABCD"])
    ratios = np.round(np.minimum(1.0, (budget / np.maximum(sizes @ w, 1.0))[:, None] * w[None, :]), 6)
    draws, joint = _expected_figures(eligible, patterns, ratios, _floors(tasks))
    return tasks, sizes, ratios, (draws - joint) / max(draws, 1)


CROSS_DISTRICT_TASKS = {"FIR-T01"}


def make_plan(
    items: dict[str, pl.DataFrame], patterns: pl.DataFrame, total_rows: int, year: int = PLAN_YEAR
) -> tuple[Plan, float]:
    """A city plan drawing about 1% of object rows, tuned so fusion saves about 10% of visits.

    Class ratios are weighted A 0.5 : B 1 : C 3 : D 10. The narrower the focus (fewer
    industry classes per 定向 task), the higher the ratios and the more departments' draws
    overlap: the focus is chosen by bisection so the expected reduction is closest to 10%."""
    lo, hi = 1, FOCUS_STEPS  # reduction falls as the focus widens
    while hi - lo > 1:
        mid = (lo + hi) // 2
        (lo, hi) = (mid, hi) if _tuned(items, patterns, total_rows, mid)[3] > TARGET_REDUCTION else (lo, mid)
    candidates = [_tuned(items, patterns, total_rows, f) for f in (lo, hi)]
    tasks, sizes, ratios, reduction = min(candidates, key=lambda c: abs(c[3] - TARGET_REDUCTION))
    final = []
    for i, t in enumerate(tasks):
        r = {c: float(ratios[i, j]) for j, c in enumerate("ABCD")}
        r |= {c: ClassRatio(ratio=r[c], min_count=floor) for c, floor in _FLOORS.get(t.department, {}).items()}
        if t.department == "URB":  # count tasks: the same expected draws, as a fixed number
            count = max(1, int(round(float(np.ceil(ratios[i] * sizes[i]).sum()))))
            final.append(t.model_copy(update={"ratio": None, "count": count}))
        elif t.task_id in CROSS_DISTRICT_TASKS:  # 所所交叉: fire safety is checked by another district's team
            final.append(t.model_copy(update={"ratio": r, "assign": AssignRules(mode="cross_district")}))
        else:
            final.append(t.model_copy(update={"ratio": r}))
    plan = Plan(
        plan_id=f"SZ-{year}-ANNUAL",
        title=f"深圳市{year}年度部门联合双随机抽查计划",
        period=Period(start=dt.date(year, 3, 1), end=dt.date(year, 11, 30)),
        seed=f"SZ-{year}-ANNUAL-demo-seed",
        exclusion_window_days=180,
        yearly_caps={"A": 1, "B": 2, "C": 3, "D": 4},
        policy_bands=_policy_bands([ratios[i] for i, t in enumerate(tasks) if t.department != "URB"]),
        no_zero_class=True,
        # the year's targets the yearly figures are judged by (jointdraw kpi): 事项覆盖率 100%, results on time
        # 90%, follow-ups completed 80%, a tenth of the visits saved by fusion
        kpi_targets=KpiTargets(
            coverage=0.01, items_drawn=1.0, results_on_time=0.9, follow_up_completed=0.8, reduction_rate=0.1
        ),
        # every kind of inspection counts (the departments' inspections.*) but those that follow a cause
        visit_caps=VisitCaps(
            total=3, per_department=2, per_level={"city": 2, "district": 3}, exempt_kinds=["complaint", "referral"]
        ),
        tasks=final,
    )
    return plan, reduction


def _policy_bands(ratios: list[np.ndarray]) -> dict[str, PolicyBand]:
    """The bands a city's policy would write for what the tuning drew: per class, from the lowest ratio
    rounded down to the highest rounded up, to one significant digit (A lowest, D highest)."""

    def rounded(x: float, rounding: str) -> float:
        d = Decimal(str(x))
        return float(d.scaleb(-d.adjusted()).to_integral_value(rounding).scaleb(d.adjusted())) if d else 0.0

    by_class = np.array(ratios).reshape(-1, 4)
    return {
        c: PolicyBand(
            min=rounded(float(by_class[:, j].min()), ROUND_FLOOR),
            max=min(1.0, rounded(float(by_class[:, j].max()), ROUND_CEILING)),
        )
        for j, c in enumerate("ABCD")
    }


def quarterly_plan(annual: Plan, quarter: int) -> Plan:
    """A quarterly batch of the annual plan: the same tasks over one quarter, seeded on its own,
    excluding what was drawn or inspected in the 90 days before the quarter starts (the annual
    draw among it: its draws count from the annual period's start)."""
    year = annual.period.start.year
    start = dt.date(year, 3 * quarter - 2, 1)
    end = (dt.date(year, 3 * quarter + 1, 1) if quarter < 4 else dt.date(year + 1, 1, 1)) - dt.timedelta(days=1)
    return annual.model_copy(
        update={
            "plan_id": f"SZ-{year}-Q{quarter}",
            "title": f"深圳市{year}年第{quarter}季度部门联合双随机抽查批次",
            "period": Period(start=start, end=end),
            "seed": f"SZ-{year}-Q{quarter}-demo-seed",
            "exclusion_window_days": 90,
        }
    )


def make_inspectors(
    rng: np.random.Generator,
    n_objects: int,
    items: dict[str, pl.DataFrame],
    listings: dict[str, pl.DataFrame],
    sizes: dict[str, int] | None = None,
) -> dict[str, pl.DataFrame]:
    """About 0.15% of the object count, spread over departments by their directory size (at least 12 each).

    Declared conflicts are USCCs of `listings` (each department's directory, or for a city made in
    chunks a uniform sample of it); `sizes` are the directories' row counts (default: the listings')."""
    total = max(int(round(n_objects * 0.0015)), 12 * len(items))
    sizes = sizes or {d: listings[d].height for d in items}
    all_rows = sum(sizes.values())
    out = {}
    for dept, dept_items in items.items():
        n = max(12, int(round(total * sizes[dept] / all_rows)))
        lines = dept_items["business_line"].unique(maintain_order=True).to_list()
        by_line = dict(dept_items.group_by("business_line", maintain_order=True).agg("item_id").iter_rows())
        # each inspector covers 2-4 business lines, chosen so every line has inspectors
        n_lines = rng.integers(2, 5, n)
        starts = rng.integers(0, len(lines), n)
        scope = [
            sorted(sum((by_line[lines[(s + j) % len(lines)]] for j in range(k)), []))
            for s, k in zip(starts, n_lines, strict=True)
        ]
        # about a third are general inspectors (综合执法) whose certificate covers every item of the department
        general = rng.random(n) < 0.35
        scope = [sorted(dept_items["item_id"].to_list()) if g else s for g, s in zip(general, scope, strict=True)]
        expiry = _dates(rng, dt.date(2026, 6, 1), dt.date(2030, 12, 31), n)
        expired = rng.random(n) < 0.05
        expiry = np.where(expired, _dates(rng, dt.date(2023, 1, 1), dt.date(2026, 2, 28), n), expiry)
        dept_objects = listings[dept]["uscc"]
        conflicts = [
            sorted(dept_objects.gather(rng.integers(0, dept_objects.len(), 2)).to_list()) if c else []
            for c in rng.random(n) < 0.02
        ]
        out[dept] = pl.DataFrame(
            {
                "inspector_id": [f"{dept}{i + 1:05d}" for i in range(n)],
                "name": (_pick(rng, _SURNAMES, n) + _pick(rng, _GIVEN, n) + _pick(rng, _GIVEN, n)),
                "department": dept,
                "district_code": _choice(rng, _DISTRICT_WEIGHTS, n).astype(str),
                "cert_no": [f"44030{list(items).index(dept):02d}{i + 1:06d}" for i in range(n)],
                "cert_valid_until": expiry,
                "item_scope": scope,
                "status": _choice(rng, {"active": 0.93, "on_leave": 0.05, "retired": 0.02}, n).astype(str),
                "conflicts": conflicts,
            },
            schema_overrides={"item_scope": pl.List(pl.String), "conflicts": pl.List(pl.String)},
        )
        if dept in EXPERT_FIELDS:
            out[dept] = pl.concat(
                [out[dept].with_columns(role=pl.lit("inspector")), _experts(dept, n, dept_items)], how="diagonal"
            )
    return out


def _experts(department: str, inspectors: int, items: pl.DataFrame) -> pl.DataFrame:
    """The department's experts (专家) and third-party institutions (第三方机构) of each field its items
    require: one in forty of its inspectors per field, at least three, over the districts in turn, the
    third of each field an institution; appointed (or accredited) until the end of 2030. Drawn without
    the city's random generator, so the rest of the city is the same with or without them."""
    districts = list(_DISTRICT_WEIGHTS)
    rows = []
    for f, field_name in enumerate(EXPERT_FIELDS[department]):
        needing = items.filter(pl.col("expert") == field_name)["item_id"].to_list()
        for i in range(max(3, inspectors // 40)):
            number = len(rows) + 1
            rows.append(
                {
                    "inspector_id": f"{department}X{number:04d}",
                    "name": f"{field_name}{'检测机构' if i % 3 == 2 else '专家'}{number}",
                    "department": department,
                    "district_code": str(districts[(f + i) % len(districts)]),
                    "cert_no": f"ZJ{department}{number:05d}",
                    "cert_valid_until": dt.date(2030, 12, 31),
                    "item_scope": needing,
                    "status": "active",
                    "conflicts": [],
                    "role": "third_party" if i % 3 == 2 else "expert",
                    "expertise": [field_name],
                }
            )
    return pl.DataFrame(
        rows,
        schema_overrides={
            "item_scope": pl.List(pl.String),
            "conflicts": pl.List(pl.String),
            "expertise": pl.List(pl.String),
        },
    )


OBJECT_COLUMNS = (
    "uscc",
    "name",
    "entity_type",
    "registered_type",
    "registered_type_code",
    "district_code",
    "address",
    "industry_code",
    "registered_on",
    "status",
    "credit_risk",
    "tags",
    "operator_name",
    "phone",
    *EXTRA_COLUMNS,
)


def city_entities(n_objects: int) -> int:
    """How many entities make about `n_objects` object rows (at least 50): besides the market
    regulator's listing, an entity is listed by as many departments as LISTINGS gives its section."""
    mean_listings = 1.0 + sum(sum(INDUSTRY_MIX.get(s, 0) * p for s, p in m.items()) for m in LISTINGS.values()) / sum(
        INDUSTRY_MIX.values()
    )
    return max(50, int(n_objects / mean_listings))


def chunk_sizes(n_entities: int, chunk_entities: int = CHUNK_ENTITIES) -> list[int]:
    """Entities per chunk, in the order they are made: as few chunks of at most `chunk_entities` as
    hold them, as equal as can be (a city of at most `chunk_entities` entities is one chunk)."""
    k = max(1, -(-n_entities // chunk_entities))
    return [n_entities // k + (i < n_entities % k) for i in range(k)]


def _merged_patterns(total: pl.DataFrame | None, chunk: pl.DataFrame) -> pl.DataFrame:
    """`entity_patterns` of the chunks so far and of one more: the counts of equal patterns added."""
    if total is None:
        return chunk
    keys = [c for c in chunk.columns if c != "n"]
    return pl.concat([total, chunk], how="vertical_relaxed").group_by(keys).agg(pl.col("n").sum()).sort(pl.all())


def _directory_sample(sample: pl.DataFrame | None, listing: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """A uniform sample of at most CONFLICT_POOL of a directory's USCCs over its chunks so far: those
    with the smallest random keys (`_key`), in the keys' order."""
    chunk = listing.select("uscc", _key=pl.Series(rng.random(listing.height)))
    both = chunk if sample is None else pl.concat([sample, chunk])
    return both.bottom_k(CONFLICT_POOL, by="_key").sort("_key")


def _merged_inspections(parts: list[dict[str, pl.DataFrame]]) -> dict[str, pl.DataFrame]:
    """Each department's inspections of every chunk, sorted as `make_inspections` sorts them."""
    if len(parts) == 1:
        return parts[0]
    return {d: pl.concat([p[d] for p in parts]).unique(maintain_order=True).sort(pl.all()) for d in parts[0]}


def generate_city(
    n_objects: int,
    seed: int,
    chunk_entities: int = CHUNK_ENTITIES,
    emit: Callable[[dict[str, pl.DataFrame]], None] | None = None,
) -> City:
    """The whole synthetic city for `n_objects` object rows, deterministic in `seed` (and in
    `chunk_entities`: a city of more entities is made in chunks, `chunk_sizes`).

    With `emit`, every chunk's objects but the last's are handed to it as they are made and not
    kept: the City's `objects` are then the last chunk's (`submission.write_generated_city` writes
    them after the others). Without, they are every chunk's, in order."""
    rng = np.random.default_rng(np.random.PCG64(seed))
    # its own generator: the inspections leave every other table of the city as it was
    inspections_rng = np.random.default_rng(np.random.PCG64([seed, 2]))
    # and another for the directory samples a city of several chunks keeps (one chunk keeps its directories)
    sample_rng = np.random.default_rng(np.random.PCG64([seed, 3]))
    sizes = chunk_sizes(city_entities(n_objects), chunk_entities)
    if sum(sizes) > 10**8:
        raise ValueError(f"{n_objects:,} object rows: the generator numbers at most 100,000,000 entities")
    numbering = UsccNumbering()
    patterns: pl.DataFrame | None = None
    rows: dict[str, int] = {}
    directories: dict[str, pl.DataFrame] = {}  # where inspectors' conflicts come from
    inspections: list[dict[str, pl.DataFrame]] = []
    kept: list[dict[str, pl.DataFrame]] = []
    start = 0
    for chunk, n in enumerate(sizes):
        entities = make_entities(rng, n, start, numbering)
        listings = list_entities(rng, entities)
        start += n
        patterns = _merged_patterns(patterns, entity_patterns(entities, listings))
        rows = {d: rows.get(d, 0) + df.height for d, df in listings.items()}
        # a city of one chunk has its directories at hand; one of several keeps a sample of each
        directories = (
            listings
            if len(sizes) == 1
            else {d: _directory_sample(directories.get(d), df, sample_rng) for d, df in listings.items()}
        )
        # the few entities inspected often this winter are of the first chunk
        inspections.append(make_inspections(inspections_rng, listings, PLAN_YEAR, frequent=chunk == 0))
        objects = {d: df.select(OBJECT_COLUMNS) for d, df in listings.items()}
        del entities, listings
        if emit is not None and chunk < len(sizes) - 1:
            emit(objects)
        else:
            kept.append(objects)
        del objects
    items = make_items()
    assert patterns is not None
    plan, reduction = make_plan(items, patterns, sum(rows.values()))
    inspectors = make_inspectors(rng, n_objects, items, directories, rows)
    return City(
        objects={d: pl.concat([k[d] for k in kept]) if len(kept) > 1 else kept[0][d] for d in kept[0]},
        inspectors=inspectors,
        items=items,
        plan=plan,
        expected_reduction=reduction,
        inspections=_merged_inspections(inspections),
    )
