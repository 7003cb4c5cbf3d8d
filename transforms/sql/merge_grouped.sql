-- The entities listed several times (`shared`: temp table of their records), one row each.
-- Registration facts come from the first record in precedence order that has them (the
-- market regulator's, else the smallest department code's); the class is the highest risk
-- any department gives (A < B < C < D); tags are the union.
-- Lean aggregates only: the first record is marked in `shared` (`is_first`); the departments and
-- the ways the records were linked are gathered as bits, and the few sets of them that occur
-- turned into lists (a list aggregated per entity costs 3x more).
with first_record as (
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
        phone
    from shared
    where is_first
),

-- how a record was linked to its entity (merge_keyed.sql), each a bit
link_kinds as (
    select
        kind,
        bit
    from (values ('org_code', 1), ('reg_no', 2), ('unlinked', 4), ('uscc', 8)) as kinds (kind, bit)
),

gathered as (
    select
        entity_key,
        max(credit_risk) as credit_risk,
        -- records without tags add none (and the union of no tags is [])
        coalesce(list_sort(list_distinct(flatten(list(tags) filter (where len(tags) > 0)))), []) as tags,
        bit_or(department_bit) as department_bits,
        count(*)::uinteger as n_records,
        bit_or(k.bit) as link_bits,
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
    join link_kinds k on shared.linked_by = k.kind
    group by entity_key
),

-- the rare entity whose first record lacks a fact that a later record has: the first non-null
-- value of each fact in precedence order
gaps as (
    select entity_key
    from first_record f join gathered g using (entity_key)
    where
        (f.name is null and g.n_name > 0) or (f.entity_type is null and g.n_entity_type > 0)
        or (f.registered_type is null and g.n_registered_type > 0)
        or (f.registered_on is null and g.n_registered_on > 0) or (f.status is null and g.n_status > 0)
        or (f.industry_code is null and g.n_industry_code > 0) or (f.address is null and g.n_address > 0)
        or (f.district_code is null and g.n_district_code > 0)
        or (f.operator_name is null and g.n_operator_name > 0)
        or (f.phone is null and g.n_phone > 0)
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

-- each set of departments an entity is listed by, as its sorted codes (a few thousand sets)
department_sets as (
    select
        s.department_bits,
        list(d.submitted_by order by d.submitted_by) as departments
    from (select distinct department_bits from gathered) as s
    join departments d on (s.department_bits & d.department_bit) <> 0  -- temp table: each one's bit
    group by s.department_bits
),

-- each set of ways an entity's records were linked, as its sorted kinds
link_sets as (
    select
        s.link_bits,
        list(k.kind order by k.kind) as linked_by
    from (select distinct link_bits from gathered) as s
    join link_kinds k on (s.link_bits & k.bit) <> 0
    group by s.link_bits
),

grouped as (
    select
        entity_key,
        coalesce(f.name, x.name) as name,
        coalesce(f.entity_type, x.entity_type) as entity_type,
        coalesce(f.registered_type, x.registered.t) as registered_type,
        case when f.registered_type is null then x.registered.c else f.registered_type_code end
            as registered_type_code,
        case when f.registered_type is null then x.registered.f else f.foreign_invested end as foreign_invested,
        case when f.registered_type is null then x.registered.b else f.branch end as branch,
        coalesce(f.registered_on, x.registered_on) as registered_on,
        coalesce(f.status, x.status) as status,
        coalesce(f.industry_code, x.industry_code) as industry_code,
        coalesce(f.address, x.address) as address,
        coalesce(f.district_code, x.district_code) as district_code,
        coalesce(f.operator_name, x.operator_name) as operator_name,
        coalesce(f.phone, x.phone) as phone,
        g.credit_risk,
        g.tags,
        d.departments,
        g.n_records,
        k.linked_by
    from first_record f
    join gathered g using (entity_key)
    join department_sets d using (department_bits)
    join link_sets k using (link_bits)
    left join filled x using (entity_key)
)

select * from grouped
