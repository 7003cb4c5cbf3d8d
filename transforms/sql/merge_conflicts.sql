-- Every attribute on which an entity's records disagree, each department's value, and the
-- value the directory chose. Records disagree on an attribute when its smallest and largest
-- values differ (nulls aside). Names are compared with full-width ASCII folded to half-width
-- ($full_width → $half_width, what NFKC does to them), so （深圳） and (深圳) agree.
with compared as (  -- `shared`: temp table of the records of entities listed several times
    select
        entity_key,
        submitted_by,
        source_line,
        case when regexp_matches(name, '[！-～　]') then translate(name, $full_width, $half_width) else name end as name,
        entity_type,
        registered_on::varchar as registered_on,
        status,
        industry_code,
        address,
        district_code,
        credit_risk,
        -- what the departments wrote, for the report
        name as name_written
    from shared
),

spread as (
    select
        entity_key,
        min(name) <> max(name) as name,
        min(entity_type) <> max(entity_type) as entity_type,
        min(registered_on) <> max(registered_on) as registered_on,
        min(status) <> max(status) as status,
        min(industry_code) <> max(industry_code) as industry_code,
        min(address) <> max(address) as address,
        min(district_code) <> max(district_code) as district_code,
        min(credit_risk) <> max(credit_risk) as credit_risk
    from compared
    group by entity_key
),

disagreeing as (
    select
        entity_key,
        attribute
    from (
        unpivot spread on name, entity_type, registered_on, status, industry_code, address, district_code, credit_risk
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
            name_written as name,
            entity_type,
            registered_on,
            status,
            industry_code,
            address,
            district_code,
            credit_risk
        from compared
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
