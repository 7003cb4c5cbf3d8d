"""The Chinese headers of every table people open (SPEC §6), in one place: the notices, the draws and
joint tasks, the unassigned tasks, the quarantine, and the results' progress, outstanding items and
regulator's table. The CSV and the XLSX of a table carry these headers; its Parquet file keeps the
SPEC's English names. A dict's order is the table's column order where the table is built from it.
"""

from __future__ import annotations

NOTICE = {  # the public notice (公示名单)
    "district": "所属区",
    "name": "企业名称",
    "uscc": "统一社会信用代码",
    "items": "抽查事项",
    "departments": "检查部门",
    "lead": "牵头部门",
    "window": "检查时间",
    "joint_task_id": "联合任务编号",
}
DRAWS = {
    "plan_id": "计划编号",
    "task_id": "抽查任务编号",
    "department": "任务部门",
    "item_ids": "抽查事项编号",
    "uscc": "统一社会信用代码",
    "name": "企业名称",
    "district_code": "行政区划代码",
    "credit_risk": "信用风险分类",
    "stratum_size": "本层对象数",
    "k": "本层抽取数",
    "score_key": "评分键",
    "score": "评分",
}
JOINT_TASKS = {
    "joint_task_id": "联合任务编号",
    "uscc": "统一社会信用代码",
    "name": "企业名称",
    "district_code": "行政区划代码",
    "address": "住所",
    "departments": "检查部门",
    "lead_department": "牵头部门",
    "task_ids": "抽查任务编号",
    "item_ids": "抽查事项编号",
    "inspector_ids": "执法检查人员编号",
    "planned_date": "计划检查日期",
}
TEAM = {  # 检查组: who goes where, in which role, and the leader
    "joint_task_id": "联合任务编号",
    "department": "检查部门",
    "inspector_id": "人员编号",
    "role": "人员类别",
    "team_leader": "组长",
    "lead_department": "牵头部门",
    "pool": "抽取范围",
}
TEAM_VALUES = {  # how the team's codes read for people
    "role": {"inspector": "执法检查人员", "expert": "专家", "third_party": "第三方机构"},
    "pool": {"district": "本片区", "department": "本部门", "cross_district": "跨片区（所所交叉）"},
}
REDRAWS = {  # 递补记录
    "seq": "审计日志序号",
    "time": "时间",
    "joint_task_id": "联合任务编号",
    "department": "检查部门",
    "replaced": "被替换人员",
    "replacement": "递补人员",
    "role": "人员类别",
    "pool": "抽取范围",
    "counter": "本任务第几次递补",
    "reason": "原因",
    "note": "说明",
    "operator": "操作人",
}
UNASSIGNED = {
    "joint_task_id": "联合任务编号",
    "uscc": "统一社会信用代码",
    "name": "企业名称",
    "district_code": "所属区",
    "departments": "检查部门",
    "department": "未能派员部门",
    "reason": "原因代码",
    "reason_zh": "原因",
    "detail": "说明",
}
QUARANTINE = {
    "source_file": "文件",
    "source_line": "行号",
    "department": "报送部门",
    "kind": "名录类型",
    "reason": "原因代码",
    "column": "字段",
    "rule": "规则",
    "reasons": "全部原因",
    "original_values": "报送原值",
}
PROGRESS = {
    "department_name": "部门",
    "department": "部门代码",
    "joint_tasks": "联合检查任务",
    "items_due": "应录入事项",
    "answered": "已录入",
    "outstanding": "未录入",
    "answered_late": "逾期公示",
    "outstanding_overdue": "逾期未录入",
}
RESULTS_NOTICE = {
    "district": "所属区",
    "name": "企业名称",
    "uscc": "统一社会信用代码",
    "item": "抽查事项",
    "department": "检查部门",
    "inspection_date": "检查日期",
    "result": "检查结果",
    "follow_up": "后续处置",
    "joint_task_id": "联合任务编号",
}
RESULTS = {  # the regulator's table of published results
    "joint_task_id": "联合任务编号",
    "uscc": "统一社会信用代码",
    "department": "检查部门",
    "item_id": "抽查事项编号",
    "inspection_date": "检查日期",
    "inspectors": "检查人员",
    "method": "检查方式",
    "result_codes": "检查结果代码",
    "follow_up": "后续处置",
    "findings": "检查情况",
    "substitution_reason": "人员变更说明",
    "first_published_on": "首次公示日期",
    "deadline": "公示期限",
    "overdue": "逾期公示",
    "review_state": "审核状态",
    "reviewer": "审核人",
    "review_note": "审核意见",
    "follow_up_completed_on": "处置完结日期",
    "follow_up_deadline": "处置期限",
    "follow_up_overdue": "处置逾期",
    "entity_type": "主体类别",
    "public_until": "公示截止日期",
    "on_notice": "在公示中",
}
FOLLOW_UP_OVERDUE = {  # 逾期未完结处置: problems found, not followed up to completion by their deadline
    "joint_task_id": "联合任务编号",
    "department": "检查部门",
    "item_id": "抽查事项编号",
    "uscc": "统一社会信用代码",
    "inspection_date": "检查日期",
    "result_codes": "检查结果代码",
    "follow_up": "后续处置",
    "follow_up_deadline": "处置期限",
    "review_state": "审核状态",
}
CORRECTIONS = {  # 更正记录: every correction and withdrawal of a published result
    "correction_id": "更正序号",
    "plan_id": "计划编号",
    "corrected_at": "更正时间",
    "corrected_by": "更正人",
    "source": "来源",
    "action": "更正类型",
    "joint_task_id": "联合任务编号",
    "department": "检查部门",
    "item_id": "抽查事项编号",
    "reason": "更正原因",
    "changes": "更正内容",
    "old_row": "更正前",
    "new_row": "更正后",
}
STRATA = {  # 核验表: what anyone needs to check one entity's draw
    "task_id": "抽查任务编号",
    "score_key": "评分键",
    "credit_risk": "信用风险分类",
    "stratum_size": "本层对象数",
    "k": "本层抽取数",
    "cutoff_score": "入选分数线（本层第k低评分）",
}
PRE_ITEMS = {  # 事前公示: the item list the plan uses
    "item_id": "事项编号",
    "name": "抽查事项",
    "basis": "抽查依据",
    "method": "检查方式",
    "category": "事项类别",
    "business_line": "业务条线",
    "department": "部门",
}
PRE_PLAN = {  # 事前公示: the plan notice
    "plan_id": "计划编号",
    "task_id": "抽查任务编号",
    "title": "任务名称",
    "department": "部门",
    "kind": "抽查方式",
    "scope": "抽查范围",
    "share": "抽查比例或数量",
    "window": "检查时间",
    "items": "抽查事项编号",
    "group": "协调组",
}
OUTSTANDING = {
    "joint_task_id": "联合任务编号",
    "department": "检查部门",
    "item_id": "抽查事项编号",
    "uscc": "统一社会信用代码",
    "planned_date": "计划检查日期",
    "inspection_date": "检查日期",
    "review_state": "审核状态",
    "reviewer": "审核人",
    "review_note": "审核意见（退回原因）",
    "deadline": "录入期限",
    "overdue": "已逾期",
}
KPI = {  # 年度考核指标 (jointdraw kpi): one row per figure and department (or the city) and entity type
    "year": "年度",
    "kpi_name": "指标",
    "department": "部门",
    "department_code": "部门代码",
    "entity_type": "主体类型",
    "numerator": "分子",
    "denominator": "分母",
    "value": "指标值",
    "target": "目标值",
    "status": "是否达标",
    "target_plans": "目标来源计划",
}
