-- Every accepted object record with the key of the entity it belongs to (SPEC §4.3).
-- `records`: the accepted object records (a view); $authority: the registration authority's code (AMR).
-- Two small temp tables (the departments' order, the links of records without a USCC) and a view:
-- the records are read where they are, never copied whole.
-- the order an entity's facts are taken in: the registration authority's record first, then by
-- department code, then by line (one sortable integer: a department's base + the line),
-- and each department's bit, in department code order (an entity's departments as one integer)
create or replace temp table departments as
with submitters as (
    select
        submitted_by,
        row_number() over (order by submitted_by) as code_order
    from (select distinct submitted_by from records) as codes
)

select
    submitted_by,
    (submitted_by <> $authority)::bigint * (1::bigint << 50) + code_order * (1::bigint << 32) as precedence_base,
    1::uhugeint << (code_order - 1)::uhugeint as department_bit
from submitters;

create or replace temp table links as
with without_uscc as (
    select
        source_file,
        source_line,
        org_code,
        legacy_reg_no
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
    w.source_file,
    w.source_line,
    coalesce(o.uscc, g.uscc, 'ORG:' || w.org_code, 'REG:' || w.legacy_reg_no) as link_key,
    case when o.uscc is not null then 'org_code' when g.uscc is not null then 'reg_no' else 'unlinked' end
        as link_kind
from without_uscc w
left join by_org o on w.org_code = o.org_code
left join by_reg g on w.legacy_reg_no = g.legacy_reg_no;

create or replace temp view keyed as
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
