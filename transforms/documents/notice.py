"""The public notice (公示名单, SPEC §6): the one published file meant for citizens.

    public_notice(joint_tasks, directory, items, plan) -> one row per joint task, Chinese headers

What it shows: district, entity name, USCC (or, for an entity without one, its organisation
code or registration number), the items (by name) and departments (by name)
of the joint task, the lead department and the inspection window (the plan's period).
What it never shows: the credit class (class results are not public), inspectors, and an
individual business operator's name or phone — an individual business's name that contains
its operator's name has that name masked.
"""

from __future__ import annotations

import polars as pl

from jointdraw.transforms.documents import people_headers
from jointdraw.transforms.plan import Plan
from jointdraw.transforms.reference import department_names, reference_table

NOTICE_COLUMNS = people_headers.NOTICE  # column → header
INDIVIDUAL = "individual"


def _names(codes: str, mapping: dict[str, str]) -> pl.Expr:
    return pl.col(codes).list.eval(pl.element().replace_strict(mapping, default=pl.element()))


def _mask(row: dict) -> str | None:
    name, operator = row["name"], row["operator_name"]
    if row["entity_type"] != INDIVIDUAL or not operator or name is None:
        return name
    return name.replace(operator, "*" * len(operator))


def masked_name(name: pl.Expr, operator: pl.Expr, entity_type: pl.Expr) -> pl.Expr:
    """An individual business's name with its operator's name replaced by asterisks."""
    return pl.struct(
        name.alias("name"), operator.alias("operator_name"), entity_type.alias("entity_type")
    ).map_elements(_mask, return_dtype=pl.String)


def public_code(entity: pl.Expr) -> pl.Expr:
    """The code a citizen can look the entity up by: its USCC, or for an entity without one the code
    it has (组织机构代码 12345678-9, 注册号 440301…), not our ORG:/REG: key."""
    return (
        pl.when(entity.str.starts_with("ORG:"))
        .then(pl.concat_str(pl.lit("组织机构代码 "), entity.str.slice(4, 8), pl.lit("-"), entity.str.slice(12, 1)))
        .when(entity.str.starts_with("REG:"))
        .then(pl.concat_str(pl.lit("注册号 "), entity.str.slice(4)))
        .otherwise(entity)
    )


def public_notice(joint_tasks: pl.DataFrame, directory: pl.DataFrame, items: pl.DataFrame, plan: Plan) -> pl.DataFrame:
    """The notice rows (English column names; NOTICE_COLUMNS gives the headers), sorted by district then name."""
    districts = dict(reference_table("districts_shenzhen").select("district_code", "name_zh").iter_rows())
    departments = department_names()
    item_names = dict(items.select("item_id", "name").iter_rows())
    people = directory.select("uscc", "entity_type", "operator_name")
    window = f"{plan.period.start.isoformat()}至{plan.period.end.isoformat()}"
    return (
        joint_tasks.join(people, on="uscc", how="left")
        .select(
            district=pl.col("district_code").replace_strict(districts, default=pl.col("district_code")),
            name=masked_name(pl.col("name"), pl.col("operator_name"), pl.col("entity_type")),
            uscc=public_code(pl.col("uscc")),
            items=_names("item_ids", item_names),
            departments=_names("departments", departments),
            lead=pl.col("lead_department").replace_strict(departments, default=pl.col("lead_department")),
            window=pl.lit(window),
            joint_task_id="joint_task_id",
            _district_code="district_code",
        )
        .sort("_district_code", "name", "uscc")
        .drop("_district_code")
        .select(list(NOTICE_COLUMNS))
    )


def render_notice_page(notice: pl.DataFrame, plan: Plan, seed: str, commitment: str) -> str:
    """`notice.html`: the public notice as one self-contained page (no network; opens from a USB stick):
    the plan's title and period, a search by name or USCC, district and department (also from the
    address: notice.html#q=…&district=…), the rows in the CSV's order, and how the draw was made and
    how to check one entity, in Chinese."""
    import json

    from jointdraw.transforms.documents.seal import seal_slot
    from jointdraw.transforms.entity_check import CHECK_STEPS_ZH, score_snippet
    from jointdraw.transforms.storage.csvout import LIST_JOIN
    from jointdraw.transforms.storage.packaged import page_template

    cells = notice.select(
        (pl.col(c).list.join(LIST_JOIN) if isinstance(notice.schema[c], pl.List) else pl.col(c).cast(pl.String))
        for c in NOTICE_COLUMNS
    )
    rows = [list(r) for r in cells.iter_rows()]
    departments = sorted({d for v in cells["departments"].drop_nulls() for d in v.split("；")})
    return page_template("notice.html.j2").render(
        title=plan.title or plan.plan_id,
        plan_id=plan.plan_id,
        period=f"{plan.period.start}至{plan.period.end}",
        seed=seed,
        commitment=commitment,
        headers=list(NOTICE_COLUMNS.values()),
        rows=rows,
        districts=sorted(cells["district"].drop_nulls().unique()),
        departments=departments,
        data_json=json.dumps(rows, ensure_ascii=False).replace("</", "<\\/"),
        check_steps=CHECK_STEPS_ZH,
        snippet=score_snippet(seed),
        seal=seal_slot(),
    )
