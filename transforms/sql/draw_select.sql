-- The draw (SPEC §4.4): in each stratum (task, credit class) the k eligible objects with the
-- lowest score win, ties broken by USCC, where
--     score = first 8 bytes, big-endian, of SHA-256(seed || '|' || key || '|' || uscc)
-- and key is the task id or its coordination group. The first 16 hex digits of the digest
-- sort like the number they encode, so the comparison needs no cast.
-- Only objects whose score is under the stratum's `threshold_hex` are ranked: a bound chosen
-- so the k lowest are (almost always) under it; a stratum that comes up short is drawn
-- again with threshold 'g' (above every hex string) — the same rows a full ranking gives.
with candidates as (
    select
        e.task_id,
        e.score_key,
        e.uscc,
        e.credit_risk,
        s.n,
        s.k,
        left(sha256($seed || '|' || e.score_key || '|' || e.uscc), 16) as score_hex,
        s.threshold_hex
    from eligible e
    join strata s using (task_id, credit_risk)
    where s.k > 0
),

ranked as (
    select
        *,
        row_number() over (partition by task_id, credit_risk order by score_hex, uscc) as rank
    from candidates
    where score_hex < threshold_hex
),

final as (
    select
        task_id,
        score_key,
        uscc,
        credit_risk,
        n as stratum_size,
        k,
        ('0x' || score_hex)::ubigint as score
    from ranked
    where rank <= k
)

select * from final
