-- The accepted object records without a USCC (`records`, a view), found once over all of them, each
-- with the key of the entity it belongs to and how it was linked (entity_key, linked_by: what
-- sql/merge_linked.sql gives every record). They are usually few: every key range copies its own.
create or replace temp table linked_without_uscc as
with without_uscc as (
    select *
    from records
    where uscc is null
),

-- a record without a USCC is linked through its organization code (= USCC positions 9–17) …
by_org as (
    select
        substr(uscc, 9, 9) as org_code,
        min(uscc) as uscc
    from records
    where uscc is not null and substr(uscc, 9, 9) in (select org_code from without_uscc)
    group by 1
),

-- … or through its 15-digit registration number, to another department's record
by_reg as (
    select
        legacy_reg_no,
        min(uscc) as uscc
    from records
    where uscc is not null and legacy_reg_no in (select legacy_reg_no from without_uscc)
    group by 1
)

-- a record that links to nothing keeps a key of its own, never a USCC (':' is not in the charset)
select
    w.*,
    coalesce(o.uscc, g.uscc, 'ORG:' || w.org_code, 'REG:' || w.legacy_reg_no) as entity_key,
    case when o.uscc is not null then 'org_code' when g.uscc is not null then 'reg_no' else 'unlinked' end
        as linked_by
from without_uscc w
left join by_org o on w.org_code = o.org_code
left join by_reg g on w.legacy_reg_no = g.legacy_reg_no;
