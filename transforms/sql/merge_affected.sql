-- The entities whose records may differ from an earlier merge's, when only some departments' files changed
-- ($changed): the temp table `affected` (entity_key). `records_before` is the earlier merge's records (the
-- unchanged files, and the changed departments' files as they were), `links_before` its records without a
-- USCC with their keys (sql/merge_links.sql on them); `records` and `linked_without_uscc` are this merge's.
-- Every other entity has the records it had (one may have moved within its file: the same record), so the
-- directory row and the conflicts it had.
create or replace temp table affected as
with keys as (
    -- the USCCs of the records of a department whose file changed that are not the same before and now
    -- (temp table: transforms/merge.py differing_records) …
    select entity_key from differing
    union all
    -- … the keys, before and now, of every record without a USCC of such a department …
    select entity_key from links_before
    where list_contains($changed, submitted_by)
    union all
    select entity_key from linked_without_uscc
    where list_contains($changed, submitted_by)
    union all
    -- … and both keys of every record without a USCC now linked to another entity (an organization code
    -- or registration number another department's record no longer or newly holds)
    select unnest([b.entity_key, n.entity_key])
    from links_before b
    full join linked_without_uscc n using (submitted_by, source_file, source_line)
    where b.entity_key is distinct from n.entity_key
)

select distinct entity_key
from keys
where entity_key is not null
