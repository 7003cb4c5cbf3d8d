-- The one object directory (一个库): one row per entity, from the `keyed` records.
-- Registration facts come from the first record in precedence order that has them (the
-- market regulator's, else the smallest department code's); the class is the highest risk
-- any department gives (A < B < C < D); tags are the union. Most entities have one record:
-- those are taken as they are, and only entities listed several times are grouped.
-- (Unordered: writers order by entity_key.)
with single as (
    select
        entity_key, name, entity_type, registered_on, status, industry_code, address, district_code, operator_name, phone,
        credit_risk,
        list_sort(list_distinct(tags)) as tags,
        [submitted_by] as departments,
        1::uinteger as n_records,
        [linked_by] as linked_by
    from keyed
    anti join listed_several_times using (entity_key)  -- temp table: keys with 2+ records
),
grouped as (
    select
        entity_key,
        arg_min(name, precedence) filter (where name is not null) as name,
        arg_min(entity_type, precedence) filter (where entity_type is not null) as entity_type,
        arg_min(registered_on, precedence) filter (where registered_on is not null) as registered_on,
        arg_min(status, precedence) filter (where status is not null) as status,
        arg_min(industry_code, precedence) filter (where industry_code is not null) as industry_code,
        arg_min(address, precedence) filter (where address is not null) as address,
        arg_min(district_code, precedence) filter (where district_code is not null) as district_code,
        arg_min(operator_name, precedence) filter (where operator_name is not null) as operator_name,
        arg_min(phone, precedence) filter (where phone is not null) as phone,
        max(credit_risk) as credit_risk,
        list_sort(list_distinct(flatten(list(tags)))) as tags,
        list_sort(list_distinct(list(submitted_by))) as departments,
        count(*)::uinteger as n_records,
        list_sort(list_distinct(list(linked_by))) as linked_by
    from shared  -- temp table: the records of entities listed several times
    group by entity_key
),
final as (
    select * from single
    union all by name
    select * from grouped
)
select
    entity_key,
    case when contains(entity_key, ':') then null else entity_key end as uscc,
    * exclude (entity_key)
from final
