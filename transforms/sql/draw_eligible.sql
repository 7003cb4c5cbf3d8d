-- The eligible (task, object) pairs of a plan (SPEC §4.4), as a view that is never stored:
-- active objects with a USCC that the task's department lists, in the task's scope, minus
-- exclusions. `task_scopes` has one row per (task, industry section) the task covers (every
-- section for a 不定向 task), so objects meet tasks in one equi-join on (department, section).
create or replace temp view eligible as
with objects as (
    select unnest(departments) as department, uscc, credit_risk, left(industry_code, 1) as section,
           industry_code, entity_type, district_code, tags
    from directory
    where status = 'active' and uscc is not null
),
in_scope as (
    select t.task_id, t.score_key, o.uscc, o.credit_risk
    from task_scopes t
    join objects o on o.department = t.department and o.section = t.section
    -- 定向 filters; an empty list is no filter. Industries match as prefixes (H, H62, C13 …)
    where (len(t.industries) = 0 or len(list_filter(t.industries, lambda p: starts_with(o.industry_code, p))) > 0)
      and (len(t.entity_types) = 0 or list_contains(t.entity_types, o.entity_type))
      and (len(t.districts) = 0 or list_contains(t.districts, o.district_code))
      and (len(t.tags) = 0 or list_has_any(t.tags, o.tags))
),
final as (
    select * from in_scope
    -- excluded for every task (recently inspected, yearly cap reached) …
    anti join (select uscc from exclusions where task_id is null) using (uscc)
    -- … or for one task
    anti join (select task_id, uscc from exclusions where task_id is not null) using (task_id, uscc)
)
select * from final
