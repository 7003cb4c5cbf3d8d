-- The in-scope (task, object) pairs of a plan (SPEC §4.4), the view `in_scope`: active objects
-- that the task's department lists, in the task's scope; draw_eligible.sql takes the exclusions
-- off. `task_scopes` has one row per industry prefix a task covers (every section for
-- a 不定向 task). The prefixes are matched once against every (department, industry code) the
-- directory lists (the temp table `covered`: a few thousand rows), and objects meet their tasks
-- in one equi-join on (department, industry code) — no per-object pattern matching.
create or replace temp table covered as
with codes as (
    select distinct
        unnest(departments) as department,
        industry_code
    from directory
    where status = 'active'
)

select
    t.*,
    c.industry_code
from task_scopes t join codes c on t.department = c.department and starts_with(c.industry_code, t.prefix);

create or replace temp view in_scope as
with objects as not materialized (  -- streamed into the join, never held whole
    -- an entity without a USCC is drawn by its entity key (ORG:… / REG:…) in the USCC's place (SPEC §4.4)
    select
        unnest(departments) as department,
        entity_key as uscc,
        credit_risk,
        industry_code,
        entity_type,
        district_code,
        tags,
        registered_type_code,
        foreign_invested,
        branch
    from directory
    where status = 'active'
),

in_industries as (
    select
        t.*,
        o.uscc,
        o.credit_risk,
        o.entity_type,
        o.district_code,
        o.tags as object_tags,
        o.registered_type_code,
        o.foreign_invested as object_foreign_invested,
        o.branch as object_branch
    from covered t join objects o on t.department = o.department and t.industry_code = o.industry_code
),

scoped as (
    select
        task_id,
        uscc,
        credit_risk
    from in_industries
    -- 定向 filters; an empty list is no filter
    where
        (len(entity_types) = 0 or list_contains(entity_types, entity_type))
        and (len(districts) = 0 or list_contains(districts, district_code))
        and (len(tags) = 0 or list_has_any(tags, object_tags))
        -- the type as registered: its code, or what the type-code table says of it (a blank type says nothing)
        and (len(registered_types) = 0 or list_contains(registered_types, registered_type_code))
        and (foreign_invested is null or object_foreign_invested is not distinct from foreign_invested)
        and (branch is null or object_branch is not distinct from branch)
)

select * from scoped
