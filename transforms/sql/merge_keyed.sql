-- The records of the view `linked` (sql/merge_linked.sql: every record with its entity key) with what
-- orders and gathers them: the precedence its department and line give it and its department's bit
-- (the temp table `departments`: sql/merge_departments.sql).
select
    k.*,
    d.precedence_base + k.source_line as precedence,
    d.department_bit
from linked k
join departments d using (submitted_by)
