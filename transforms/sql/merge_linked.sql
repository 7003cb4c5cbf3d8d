-- Every accepted object record with the key of the entity it belongs to and how it was linked
-- (SPEC §4.3): a record of `records` by its USCC, a record of `records_without_uscc` by the key the
-- temp table `links` (sql/merge_links.sql) gives it. (Two views: a key range's connection reads the
-- records of its USCCs, and the records without one, each with a filter the scan applies.)
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
from records_without_uscc r
join links l using (source_file, source_line)
