-- The eligible (task, object) pairs of a plan (SPEC §4.4), kept as the temp table `eligible_pairs`:
-- the in-scope pairs (`in_scope_pairs`: draw_in_scope.sql, or an earlier run's of the same
-- directory part and task scopes) minus exclusions.
create or replace temp table eligible_pairs as
select
    task_id,
    uscc,
    credit_risk
from in_scope_pairs
-- excluded for every task (recently inspected, yearly cap reached) …
anti join (
    select uscc from exclusions
    where task_id is null
) as for_every_task using (uscc)
-- … or for one task
anti join (
    select
        task_id,
        uscc
    from exclusions
    where task_id is not null
) as for_one_task using (task_id, uscc)
