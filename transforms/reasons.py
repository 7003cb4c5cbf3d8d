"""Reason codes for rows that a stage rejects or flags: the vocabulary shared by the
generator's truth file, validation's quarantine and the tests.

`accept` in a truth file means the planted oddity must be normalised and the row kept.
"""

from __future__ import annotations

from jointdraw.transforms.uscc import ORG_CODE_REASONS, REG_NO_REASONS, USCC_REASONS

ACCEPT = "accept"

ROW_REASONS: dict[str, str] = {
    **USCC_REASONS,
    **ORG_CODE_REASONS,
    **REG_NO_REASONS,
    "required_missing": "a required value is blank",
    "date_unparseable": "a date cannot be read (use YYYY-MM-DD)",
    "date_implausible": "a date is impossible here (a registration date in the future)",
    "department_unknown": "department code is not in data/reference/departments.csv",
    "item_scope_unknown": "an item in the inspector's item scope is not on the item list",
    "district_unknown": "district is not a code, name or alias in the district table (nor named by the address)",
    "industry_unknown": "industry code is not a GB/T 4754-2017 code: no such division "
    "(data/reference/industries_gbt4754_2017.csv)",
    "industry_section_mismatch": "industry code's section letter is not its division's "
    "(GB/T 4754-2017: 65 is in section I)",
    "enum_unknown": "value is not one of the allowed codes",
    "duplicate_row": "the same row appears earlier in the file",
    "duplicate_id": "the id appears earlier in the file",
    "value_too_long": "a text value is longer than 2,000 characters (a broken file or a pasted document?)",
    # results (SPEC §4.8), checked against the plan in the warehouse
    "result_code_unknown": "a result code is not in data/reference/result_codes.csv",
    "not_own_result": "a department may enter only its own results (谁检查、谁录入)",
    "task_unknown": "the joint task is not one of this plan's",
    "department_not_on_task": "the department is not on this joint task",
    "item_not_on_task": "the item is not one this department checks in this joint task",
    "inspector_not_on_team": "an inspector present was not on the team, and no substitution reason is given",
    "date_outside_period": "the inspection date is outside the plan's period",
    "date_in_future": "the inspection date is after the day the results are published",
    "codes_contradict": "未发现问题 (no problem) is combined with a problem code",
    # review before publication and follow-up (issue 22)
    "review_unsigned": "a reviewed result (审核通过 or 审核退回) names no reviewer (审核人)",
    "returned_without_reason": "a returned result (审核退回) gives no reason (审核意见/退回原因)",
    "follow_up_before_inspection": "the follow-up's completion date (处置完结日期) is before the inspection date",
    "follow_up_in_future": "the follow-up's completion date is after the day the results are published",
    # corrections (更正) of published results
    "correction_target_unknown": "the correction names no published result of this plan (joint task, department, item)",
    "correction_incomplete": "a correction (not a withdrawal) sets no column: say what changes, or withdraw (撤回)",
}


# Each rule in Chinese, with the standard it comes from, as Data Docs show it ({column}: the column checked).
RULE_TEXT_ZH: dict[str, str] = {
    "duplicate_row": "同一文件中不得有与前面某行完全相同的行",
    "value_too_long": "任何文本值不超过 2000 个字符",
    "required_missing": "必填字段 {column} 不得为空",
    "uscc_check_char": "统一社会信用代码符合 GB 32100-2015：18 位，字符集不含 I、O、Z、S、V，"
    "第 1 位为登记管理部门代码，"
    "第 18 位校验码正确，第 9–17 位组织机构代码符合 GB 11714 校验（每行的原因依次为 uscc_stored_as_number、"
    "uscc_length、uscc_charset、uscc_authority、uscc_check_char、uscc_org_check 中第一个不符合的）",
    "org_code_check": "组织机构代码符合 GB 11714：8 位本体代码加 1 位校验码",
    "reg_no_check": "注册号为 15 位数字，符合 ISO 7064 MOD 11,10 校验",
    "duplicate_id": "同一文件中 {column} 不得重复（保留第一次出现的行）",
    "district_unknown": "{column} 为区划表中的行政区划代码、名称或别称"
    "（GB/T 2260，data/reference/districts_shenzhen.csv）",
    "industry_unknown": "行业代码为 GB/T 4754-2017 的门类、大类、中类或小类，门类字母与大类一致"
    "（字母与大类不一致的原因为 industry_section_mismatch）",
    "date_unparseable": "{column} 是可识别的日期",
    "date_implausible": "{column} 不晚于运行日期",
    "enum_unknown": "{column} 的取值在代码表中",
    "department_unknown": "部门代码在部门表中（data/reference/departments.csv）",
    "item_scope_unknown": "检查事项范围中的每个事项都在事项清单中",
    "result_code_unknown": "检查结果代码在结果代码表中（data/reference/result_codes.csv）",
    "not_own_result": "部门只录入本部门的检查结果（谁检查、谁录入）",
    "task_unknown": "联合任务编号属于本计划",
    "department_not_on_task": "录入部门在该联合任务中",
    "item_not_on_task": "事项属于该部门在该联合任务中的检查事项",
    "inspector_not_on_team": "检查人员在检查组中，或写明人员变更原因",
    "date_outside_period": "检查日期在计划检查时间内",
    "date_in_future": "检查日期不晚于结果公示日",
    "codes_contradict": "“未发现问题”不与发现问题的结果代码同时出现",
    "review_unsigned": "审核通过或审核退回的结果须写明审核人",
    "returned_without_reason": "审核退回的结果须写明退回原因（审核意见）",
    "follow_up_before_inspection": "处置完结日期不早于检查日期",
    "follow_up_in_future": "处置完结日期不晚于结果公示日",
    "correction_target_unknown": "更正的结果（联合任务编号、检查部门、事项编号）须是本计划已公示的结果",
    "correction_incomplete": "更正须写明更正的内容，或为撤回",
}
