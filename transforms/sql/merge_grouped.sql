-- The entities listed several times (`shared`: temp table of their records), one row each.
-- Registration facts come from the first record in precedence order that has them (the
-- market regulator's, else the smallest department code's); the class is the highest risk
-- any department gives (A < B < C < D); tags are the union.
-- Two lean aggregates are much faster than one wide one: the first record in precedence order as
-- a whole, and the lists, the class and a count of the non-null values of every fact.
with first_record as (
    select
        entity_key,
        arg_min({
            name: name, entity_type: entity_type, registered_type: registered_type,
            registered_type_code: registered_type_code, foreign_invested: foreign_invested, branch: branch,
            registered_on: registered_on, status: status,
            industry_code: industry_code, address: address, district_code: district_code,
            operator_name: operator_name, phone: phone
        }, precedence) as top
    from shared
    group by entity_key
),

gathered as (
    select
        entity_key,
        max(credit_risk) as credit_risk,
        list_sort(list_distinct(flatten(list(tags)))) as tags,
        list_sort(list_distinct(list(submitted_by))) as departments,
        count(*)::uinteger as n_records,
        list_sort(list_distinct(list(linked_by))) as linked_by,
        count(name) as n_name,
        count(entity_type) as n_entity_type,
        count(registered_type) as n_registered_type,
        count(registered_on) as n_registered_on,
        count(status) as n_status,
        count(industry_code) as n_industry_code,
        count(address) as n_address,
        count(district_code) as n_district_code,
        count(operator_name) as n_operator_name,
        count(phone) as n_phone
    from shared
    group by entity_key
),

-- the rare entity whose first record lacks a fact that a later record has: the first non-null
-- value of each fact in precedence order
gaps as (
    select entity_key
    from first_record f join gathered g using (entity_key)
    where
        (f.top.name is null and g.n_name > 0) or (f.top.entity_type is null and g.n_entity_type > 0)
        or (f.top.registered_type is null and g.n_registered_type > 0)
        or (f.top.registered_on is null and g.n_registered_on > 0) or (f.top.status is null and g.n_status > 0)
        or (f.top.industry_code is null and g.n_industry_code > 0) or (f.top.address is null and g.n_address > 0)
        or (f.top.district_code is null and g.n_district_code > 0)
        or (f.top.operator_name is null and g.n_operator_name > 0)
        or (f.top.phone is null and g.n_phone > 0)
),

filled as (
    select
        entity_key,
        arg_min(name, precedence) filter (where name is not null) as name,
        arg_min(entity_type, precedence) filter (where entity_type is not null) as entity_type,
        -- the type, its code and what the table says of it come together, from one record
        arg_min({ t: registered_type, c: registered_type_code, f: foreign_invested, b: branch }, precedence)
        filter (where registered_type is not null) as registered,
        arg_min(registered_on, precedence) filter (where registered_on is not null) as registered_on,
        arg_min(status, precedence) filter (where status is not null) as status,
        arg_min(industry_code, precedence) filter (where industry_code is not null) as industry_code,
        arg_min(address, precedence) filter (where address is not null) as address,
        arg_min(district_code, precedence) filter (where district_code is not null) as district_code,
        arg_min(operator_name, precedence) filter (where operator_name is not null) as operator_name,
        arg_min(phone, precedence) filter (where phone is not null) as phone
    from shared semi join gaps using (entity_key)
    group by entity_key
),

grouped as (
    select
        entity_key,
        coalesce(f.top.name, x.name) as name,
        coalesce(f.top.entity_type, x.entity_type) as entity_type,
        coalesce(f.top.registered_type, x.registered.t) as registered_type,
        case when f.top.registered_type is null then x.registered.c else f.top.registered_type_code end
            as registered_type_code,
        case when f.top.registered_type is null then x.registered.f else f.top.foreign_invested end as foreign_invested,
        case when f.top.registered_type is null then x.registered.b else f.top.branch end as branch,
        coalesce(f.top.registered_on, x.registered_on) as registered_on,
        coalesce(f.top.status, x.status) as status,
        coalesce(f.top.industry_code, x.industry_code) as industry_code,
        coalesce(f.top.address, x.address) as address,
        coalesce(f.top.district_code, x.district_code) as district_code,
        coalesce(f.top.operator_name, x.operator_name) as operator_name,
        coalesce(f.top.phone, x.phone) as phone,
        g.credit_risk,
        g.tags,
        g.departments,
        g.n_records,
        g.linked_by
    from first_record f
    join gathered g using (entity_key)
    left join filled x using (entity_key)
)

select * from grouped
