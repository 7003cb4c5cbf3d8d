-- Every accepted object record with the key of the entity it belongs to (SPEC §4.3): a query over
-- `records` (the accepted object records, a view) and the temp tables `departments` and `links`
-- (sql/merge_links.sql), read where they are, never copied whole.
with linked as (
    select
        r.*,
        r.uscc as entity_key,
        'uscc' as linked_by
    from records r
    where r.uscc is not null
    union all by name
    select
        r.*,
        l.link_key as entity_key,
        l.link_kind as linked_by
    from records r
    join links l using (source_file, source_line)
    where r.uscc is null
)

select
    k.*,
    d.precedence_base + k.source_line as precedence,
    d.department_bit
from linked k
join departments d using (submitted_by)
