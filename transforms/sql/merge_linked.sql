-- Every accepted object record with the key of the entity it belongs to and how it was linked
-- (SPEC §4.3): a record of `records` by its USCC, a record without one by the key the temp table
-- `linked_without_uscc` (sql/merge_links.sql) gives it. (A key range's connection reads the records
-- of its USCCs, with a filter the scan applies, and its slice of that table.)
select
    r.*,
    r.uscc as entity_key,
    'uscc' as linked_by
from records r
where r.uscc is not null
union all by name
select * from linked_without_uscc
