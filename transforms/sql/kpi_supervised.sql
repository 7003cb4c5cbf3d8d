-- The entities the departments supervised in a year (issue 22, transforms/kpi.py): one row per
-- (entity, department that lists it), with the entity's category (enterprise, individual, cooperative, other).
-- $year: the year; the year's plans are those whose period starts in it.
with year_snapshots as (
    select
        s.entity_key,
        s.entity_type,
        s.status,
        s.departments,
        r.period_start,
        s.plan_id
    from snapshots s
    join runs r using (plan_id)
    where year(r.period_start) = $year
),

-- an entity is supervised when it was active (存续/在业) in at least one of the year's snapshots
-- (deregistered, revoked and moved-out entities are no longer supervised); its category is the one
-- its latest snapshot gives (the latest plan's period start, then the largest plan id)
entity as (
    select
        entity_key,
        arg_max(entity_type, (period_start, plan_id)) as entity_type
    from year_snapshots
    group by entity_key
    having bool_or(status = 'active')
),

-- counted once per department that lists it in any of the year's snapshots
listed as (
    select distinct
        entity_key,
        unnest(departments) as department
    from year_snapshots
),

final as (
    select
        l.entity_key,
        l.department,
        e.entity_type
    from listed l
    join entity e using (entity_key)
)

select * from final
order by department, entity_key
