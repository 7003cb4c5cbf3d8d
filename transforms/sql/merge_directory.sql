-- The one object directory (一个库): one row per entity. Most entities have one record (in
-- `keyed` but not in `listed_several_times`): those are taken as they are; the others are the
-- temp table `grouped` (sql/merge_grouped.sql). (Unordered: writers order by entity_key.)
with single as (
    select
        entity_key,
        name,
        entity_type,
        registered_type,
        registered_type_code,
        foreign_invested,
        branch,
        registered_on,
        status,
        industry_code,
        address,
        district_code,
        operator_name,
        phone,
        credit_risk,
        list_sort(list_distinct(tags)) as tags,
        [submitted_by] as departments,
        1::uinteger as n_records,
        [linked_by] as linked_by
    from keyed
    anti join listed_several_times using (entity_key)  -- temp table: keys with 2+ records
),

final as (
    select * from single
    union all by name
    select * from grouped
)

-- the USCC is the entity key but for an entity known without one (ORG:… / REG:…): the macro uscc_of
-- (transforms/merge.py USCC_OF_ENTITY_KEY)
select
    entity_key,
    uscc_of(entity_key) as uscc,
    * exclude (entity_key)
from final
