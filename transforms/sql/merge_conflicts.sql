-- Every attribute on which an entity's records disagree, each department's value, and the
-- value the directory chose. Records disagree on an attribute when any of their values (nulls
-- aside) differs from the directory's, which is one of them (the first in precedence order, or
-- for the class the highest). Names are compared with full-width ASCII folded to half-width
-- ($full_width → $half_width, what NFKC does to them), so （深圳） and (深圳) agree.
with compared as (  -- `shared`: temp table of the records of entities listed several times
    select
        s.entity_key,
        -- folded only where the names differ as written
        case
            when s.name = g.name then false
            else translate(s.name, $full_width, $half_width) <> translate(g.name, $full_width, $half_width)
        end as name,
        s.entity_type <> g.entity_type as entity_type,
        s.registered_on <> g.registered_on as registered_on,
        s.status <> g.status as status,
        s.industry_code <> g.industry_code as industry_code,
        s.address <> g.address as address,
        s.district_code <> g.district_code as district_code,
        s.credit_risk <> g.credit_risk as credit_risk
    from shared s
    join grouped g using (entity_key)  -- temp table: the directory's rows of entities listed several times
),

disagreeing as (
    select distinct
        entity_key,
        attribute
    from (
        unpivot (
            select * from compared
            where
                name or entity_type or registered_on or status or industry_code or address or district_code
                or credit_risk
        )
        on name, entity_type, registered_on, status, industry_code, address, district_code, credit_risk
        into name attribute value differs
    )
    where differs
),

values_by_record as (
    unpivot (
        select
            entity_key,
            submitted_by,
            source_line,
            name,
            entity_type,
            registered_on::varchar as registered_on,
            status,
            industry_code,
            address,
            district_code,
            credit_risk
        from shared
        semi join (select distinct entity_key from disagreeing) as d using (entity_key)
    )
    on name, entity_type, registered_on, status, industry_code, address, district_code, credit_risk
    into name attribute value value
),

chosen as (
    unpivot (
        select
            entity_key,
            name,
            entity_type,
            registered_on::varchar as registered_on,
            status,
            industry_code,
            address,
            district_code,
            credit_risk
        from grouped  -- temp table: the directory's rows of entities listed several times
        semi join (select distinct entity_key from disagreeing) as d using (entity_key)
    )
    on name, entity_type, registered_on, status, industry_code, address, district_code, credit_risk
    into name attribute value chosen
),

final as (
    select
        v.entity_key,
        v.attribute,
        list(v.submitted_by || '=' || v.value order by v.submitted_by, v.source_line) as values,
        min(c.chosen) as chosen,  -- one value per (entity, attribute)
        case
            when v.attribute = 'credit_risk' then 'highest risk class (D > C > B > A)'
            else $authority || ' record, else smallest department code'
        end as rule
    from values_by_record v
    semi join disagreeing using (entity_key, attribute)
    left join chosen c using (entity_key, attribute)
    group by v.entity_key, v.attribute
)

select * from final
order by entity_key, attribute
