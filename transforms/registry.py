"""What a registry file holds (SPEC §2): its kinds, columns, header aliases and enumerations.

This module is data about the contract, not logic: the reader maps headers with
`HEADER_ALIASES`, the normaliser types columns by `COLUMNS`, validation (issue 3)
checks `REQUIRED` and the enumerations.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from jointdraw.transforms.reference import enum_spellings, reference_table

Kind = Literal["objects", "inspectors", "items", "inspections", "results", "corrections"]
KINDS: tuple[Kind, ...] = ("objects", "inspectors", "items", "inspections")  # what a plan run reads
# Kinds a department may leave out without anything changing: a run without any such file reports,
# validates and commits exactly what it did before the kind existed.
OPTIONAL_KINDS: tuple[Kind, ...] = ("inspections",)
# what departments submit after inspecting (SPEC §4.8): their results so far, and corrections to published ones
RESULT_KINDS: tuple[Kind, ...] = ("results", "corrections")
# Kinds whose quarantined share never fails a run: a correction is a deliberate act row by row (a bad one is
# quarantined with its reason and reported), not a registry export that may be broken as a whole.
NO_THRESHOLD_KINDS: tuple[Kind, ...] = ("corrections",)


def submitted_kinds(found: Iterable[str]) -> tuple[Kind, ...]:
    """The plan run's kinds to report, in order: every registry, and an optional kind only when a
    department submitted it (`found`: the kinds of the files read)."""
    found = set(found)
    return tuple(k for k in KINDS if k not in OPTIONAL_KINDS or k in found)


# Column name → how it is normalised: code (upper-case ASCII, no spaces), text (trimmed),
# date, enum:<name>, list (split on ; ； , ， 、 |), list_code (a list of codes).
COLUMNS: dict[Kind, dict[str, str]] = {
    "objects": {
        "uscc": "code",
        "name": "text",
        "entity_type": "entity_type",  # the type as registered → category (transforms/entity_types.py)
        "district_code": "district",  # code or name, else from the address (transforms/districts.py)
        "address": "text",
        "industry_code": "industry",  # GB/T 4754-2017 in any written form → I6513 (transforms/industry.py)
        "registered_on": "date",
        "status": "enum:object_status",
        "credit_risk": "enum:credit_risk",
        "legacy_reg_no": "code",
        "org_code": "org_code",
        "tags": "list",
        "operator_name": "text",
        "phone": "code",
    },
    "inspectors": {
        "inspector_id": "code",
        "name": "text",
        "department": "code",
        "district_code": "district",
        "cert_no": "code",
        "cert_valid_until": "date",
        "item_scope": "list_code",
        "status": "enum:inspector_status",
        "conflicts": "list_code",
        # issue 21: experts (专家) and third-party institutions (第三方机构) sit in the same registry with a
        # role (none given: a certified inspector) and the fields of expertise (专业领域) items may require
        "role": "enum:inspector_role",
        "expertise": "list",
    },
    "items": {
        "item_id": "code",
        "department": "code",
        "business_line": "text",
        "name": "text",
        "basis": "text",
        "category": "enum:item_category",
        "method": "text",
        "scope": "text",
        "expert": "text",  # the field of expertise an expert or third party on the team must have (所需专家领域)
    },
    # every inspection of an entity this year, of any kind (检查记录): what the plan's visit caps count
    "inspections": {
        "uscc": "code",
        "name": "text",
        "department": "code",
        "inspection_date": "date",
        "inspection_kind": "enum:inspection_kind",
        "level": "enum:inspection_level",
    },
    "results": {
        "joint_task_id": "code",
        "department": "code",
        "item_id": "code",
        "inspection_date": "date",
        "inspectors": "list_code",
        "method": "enum:inspection_method",
        "result_codes": "list_enum:result_code",
        "follow_up": "enum:follow_up",
        "findings": "text",
        "substitution_reason": "text",
        # issue 22: review before publication (审核) and the follow-up's completion (处置完结)
        "review_state": "enum:review_state",
        "reviewer": "text",
        "review_note": "text",
        "follow_up_completed_on": "date",
    },
}
# A correction (更正) names a published result by its key and gives what changes (blank: unchanged) and why;
# `action` withdraw (撤回) takes the result back instead.
COLUMNS["corrections"] = {
    **COLUMNS["results"],
    "action": "enum:correction_action",
    "correction_reason": "text",
    "corrected_by": "text",
}

# Columns the typed objects table adds, derived from the submitted ones (not submitted themselves).
DERIVED: dict[Kind, tuple[str, ...]] = {
    "objects": ("registered_type", "registered_type_code", "foreign_invested", "branch", "type_conflict")
}

# A file that lacks one of these columns fails its department (file-level rule).
REQUIRED: dict[Kind, tuple[str, ...]] = {
    "objects": ("uscc", "name", "entity_type", "district_code", "industry_code", "status", "credit_risk"),
    "inspectors": (
        "inspector_id",
        "name",
        "department",
        "district_code",
        "cert_no",
        "cert_valid_until",
        "item_scope",
        "status",
    ),
    "items": ("item_id", "department", "name", "category", "scope"),
    "inspections": ("uscc", "department", "inspection_date", "inspection_kind", "level"),
    "results": (
        "joint_task_id",
        "department",
        "item_id",
        "inspection_date",
        "inspectors",
        "method",
        "result_codes",
        "follow_up",
    ),
    "corrections": ("joint_task_id", "department", "item_id", "correction_reason"),
}

# Chinese (and common English variant) headers → SPEC names. Matched after trimming,
# NFKC and lower-casing, so `USCC`, ` uscc ` and `统一社会信用代码` all map to `uscc`.
HEADER_ALIASES: dict[Kind, dict[str, str]] = {
    "objects": {
        "统一社会信用代码": "uscc",
        "信用代码": "uscc",
        "企业名称": "name",
        "名称": "name",
        "主体名称": "name",
        "市场主体名称": "name",
        "主体类型": "entity_type",
        "市场主体类型": "entity_type",
        "企业类型": "entity_type",
        "类型": "entity_type",
        "企业类型代码": "entity_type",
        "registered_type": "entity_type",
        "行政区划代码": "district_code",
        "区划代码": "district_code",
        "所属辖区": "district_code",
        "district": "district_code",
        "行政区划": "district_code",
        "所属区域": "district_code",
        "所属区": "district_code",
        "所在区": "district_code",
        "区县": "district_code",
        "辖区": "district_code",
        "住所": "address",
        "地址": "address",
        "经营场所": "address",
        "住所(经营场所)": "address",
        "注册地址": "address",
        "行业代码": "industry_code",
        "国民经济行业代码": "industry_code",
        "industry": "industry_code",
        "所属行业": "industry_code",
        "行业": "industry_code",
        "国民经济行业": "industry_code",
        "行业门类": "industry_code",
        "成立日期": "registered_on",
        "登记日期": "registered_on",
        "registration_date": "registered_on",
        "登记状态": "status",
        "经营状态": "status",
        "企业状态": "status",
        "状态": "status",
        "信用风险分类": "credit_risk",
        "信用风险等级": "credit_risk",
        "credit_class": "credit_risk",
        "注册号": "legacy_reg_no",
        "reg_no": "legacy_reg_no",
        "组织机构代码": "org_code",
        "标签": "tags",
        "特殊名录": "tags",
        "经营者姓名": "operator_name",
        "经营者": "operator_name",
        "联系电话": "phone",
        "电话": "phone",
    },
    "inspectors": {
        "执法人员编号": "inspector_id",
        "人员编号": "inspector_id",
        "姓名": "name",
        "所属部门": "department",
        "部门": "department",
        "片区": "district_code",
        "所属辖区": "district_code",
        "行政区划代码": "district_code",
        "执法证号": "cert_no",
        "执法证编号": "cert_no",
        "执法证有效期至": "cert_valid_until",
        "执法证有效期": "cert_valid_until",
        "检查事项范围": "item_scope",
        "可检查事项": "item_scope",
        "状态": "status",
        "在岗状态": "status",
        "回避对象": "conflicts",
        "回避": "conflicts",
        "人员类别": "role",
        "人员类型": "role",
        "角色": "role",
        "专业领域": "expertise",
        "专业特长": "expertise",
        "专长": "expertise",
    },
    "items": {
        "事项编号": "item_id",
        "抽查事项编号": "item_id",
        "部门": "department",
        "所属部门": "department",
        "业务条线": "business_line",
        "事项名称": "name",
        "抽查事项": "name",
        "抽查依据": "basis",
        "依据": "basis",
        "事项类别": "category",
        "类别": "category",
        "检查方式": "method",
        "适用范围": "scope",
        "检查对象范围": "scope",
        "所需专家领域": "expert",
        "需专家": "expert",
        "专家领域": "expert",
    },
    "inspections": {
        "统一社会信用代码": "uscc",
        "信用代码": "uscc",
        "企业名称": "name",
        "名称": "name",
        "主体名称": "name",
        "检查对象": "name",
        "检查部门": "department",
        "部门": "department",
        "实施部门": "department",
        "检查日期": "inspection_date",
        "检查时间": "inspection_date",
        "date": "inspection_date",
        "检查类型": "inspection_kind",
        "检查类别": "inspection_kind",
        "kind": "inspection_kind",
        "type": "inspection_kind",
        "层级": "level",
        "检查层级": "level",
        "实施层级": "level",
    },
    "results": {
        "联合任务编号": "joint_task_id",
        "任务编号": "joint_task_id",
        "检查部门": "department",
        "部门": "department",
        "事项编号": "item_id",
        "抽查事项编号": "item_id",
        "检查日期": "inspection_date",
        "检查时间": "inspection_date",
        "检查人员": "inspectors",
        "执法人员": "inspectors",
        "检查人员编号": "inspectors",
        "检查方式": "method",
        "检查结果": "result_codes",
        "抽查结果": "result_codes",
        "结果代码": "result_codes",
        "后续处置": "follow_up",
        "处置措施": "follow_up",
        "检查发现": "findings",
        "问题描述": "findings",
        "检查情况": "findings",
        "人员变更说明": "substitution_reason",
        "替换原因": "substitution_reason",
        "审核状态": "review_state",
        "审核结果": "review_state",
        "审核人": "reviewer",
        "审核人员": "reviewer",
        "审核意见": "review_note",
        "退回原因": "review_note",
        "处置完结日期": "follow_up_completed_on",
        "整改完成日期": "follow_up_completed_on",
        "处置完成日期": "follow_up_completed_on",
    },
}
HEADER_ALIASES["corrections"] = {
    **HEADER_ALIASES["results"],
    "更正类型": "action",
    "操作": "action",
    "更正原因": "correction_reason",
    "更正理由": "correction_reason",
    "reason": "correction_reason",
    "更正人": "corrected_by",
    "经办人": "corrected_by",
}

# Enumerations: every accepted spelling → the canonical value. Values not listed are
# kept as submitted, so validation can quarantine them with the original text.
ENUMS: dict[str, dict[str, str]] = {
    "entity_type": {
        "enterprise": "enterprise",
        "企业": "enterprise",
        "公司": "enterprise",
        "individual": "individual",
        "individual business": "individual",
        "个体工商户": "individual",
        "个体": "individual",
        "cooperative": "cooperative",
        "农民专业合作社": "cooperative",
        "合作社": "cooperative",
        "other": "other",
        "其他": "other",
        "其它": "other",
    },
    # the statuses as registration systems print them: data/reference/object_statuses.csv
    "object_status": {
        "active": "active",
        "deregistered": "deregistered",
        "revoked": "revoked",
        "moved_out": "moved_out",
        "moved out": "moved_out",
        **dict(reference_table("object_statuses").select("name_zh", "status").iter_rows()),
    },
    "credit_risk": {
        "a": "A",
        "b": "B",
        "c": "C",
        "d": "D",
        "a类": "A",
        "b类": "B",
        "c类": "C",
        "d类": "D",
        "信用风险低": "A",
        "信用风险一般": "B",
        "信用风险较高": "C",
        "信用风险高": "D",
    },
    "inspector_status": {
        "active": "active",
        "在岗": "active",
        "在职": "active",
        "on_leave": "on_leave",
        "on leave": "on_leave",
        "休假": "on_leave",
        "离岗": "on_leave",
        "retired": "retired",
        "退休": "retired",
    },
    "inspector_role": {
        "inspector": "inspector",
        "执法检查人员": "inspector",
        "执法人员": "inspector",
        "检查人员": "inspector",
        "expert": "expert",
        "专家": "expert",
        "third_party": "third_party",
        "third party": "third_party",
        "第三方": "third_party",
        "第三方机构": "third_party",
    },
    "item_category": {
        "general": "general",
        "一般": "general",
        "一般事项": "general",
        "key": "key",
        "重点": "key",
        "重点事项": "key",
    },
}

# Inspections (检查记录): the kind of inspection, and the level of the authority that made it.
ENUMS["inspection_kind"] = {
    "random": "random",
    "双随机抽查": "random",
    "双随机": "random",
    "随机抽查": "random",
    "双随机、一公开": "random",
    "complaint": "complaint",
    "投诉举报": "complaint",
    "投诉": "complaint",
    "举报": "complaint",
    "投诉举报核查": "complaint",
    "referral": "referral",
    "转办交办": "referral",
    "交办转办": "referral",
    "转办": "referral",
    "交办": "referral",
    "移送": "referral",
    "licence": "licence",
    "license": "licence",
    "许可核查": "licence",
    "许可检查": "licence",
    "行政许可核查": "licence",
    "other": "other",
    "其他": "other",
    "其它": "other",
}
ENUMS["inspection_level"] = {  # the first Chinese spelling of each is how the sample city writes it
    "national": "national",
    "国家级": "national",
    "国家": "national",
    "province": "province",
    "省级": "province",
    "省": "province",
    "city": "city",
    "市级": "city",
    "市": "city",
    "district": "district",
    "区级": "district",
    "区": "district",
    "县级": "district",
    "street": "street",
    "街道": "street",
    "镇街": "street",
    "街道级": "street",
}
INSPECTION_KINDS = ("random", "complaint", "referral", "licence", "other")
INSPECTION_LEVELS = ("national", "province", "city", "district", "street")

# Review before publication (审核, issue 22): a blank state is pending (待审核) where review is required.
ENUMS["review_state"] = {
    "pending": "pending",
    "待审核": "pending",
    "未审核": "pending",
    "审核中": "pending",
    "approved": "approved",
    "审核通过": "approved",
    "通过": "approved",
    "已审核": "approved",
    "returned": "returned",
    "审核退回": "returned",
    "退回": "returned",
    "审核不通过": "returned",
}
REVIEW_STATES = ("pending", "approved", "returned")
ENUMS["correction_action"] = {
    "correct": "correct",
    "更正": "correct",
    "修改": "correct",
    "withdraw": "withdraw",
    "撤回": "withdraw",
    "撤销": "withdraw",
}
CORRECTION_ACTIONS = ("correct", "withdraw")

# The results' vocabularies are code tables (data/reference/): code, Chinese or English name.
ENUMS["inspection_method"] = enum_spellings("inspection_methods")
ENUMS["follow_up"] = enum_spellings("follow_up_actions")
ENUMS["result_code"] = enum_spellings("result_codes")

# Labels for people (report, printed tables).
KIND_LABELS_ZH = {
    "objects": "检查对象名录库",
    "inspectors": "执法检查人员名录库",
    "items": "抽查事项清单",
    "inspections": "检查记录",
}
