-- The departments that submitted objects (`records`, a view), in the order an entity's facts are taken
-- in (SPEC §4.3): the registration authority ($authority, AMR) first, then by department code, then by
-- line (one sortable integer: a department's base + the line), and each department's bit, in
-- department code order (an entity's departments as one integer).
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
from submitters
