"""The sample city's inspection records (检查记录): what a few departments report of every inspection
they made this year, of every kind, so the plan's visit caps (transforms/visit_caps.py) have
something to count.

Each inspecting department reports routine inspections of some of its active entities (kinds and
levels mixed, dates from the autumn before to the end of March, so some fall outside what a plan
starting 1 March counts), and a handful of entities listed by both AMR and ENV are inspected
often this winter: twice by AMR, once or twice by ENV, mostly by city-level authorities — over the
demo plan's caps. Deterministic in its own random generator, so the rest of the city is unchanged.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

INSPECTING = ("AMR", "ENV", "EMR", "FIR")  # the departments that submit inspections.* in the sample city
KIND_MIX = {"random": 0.45, "complaint": 0.2, "referral": 0.1, "licence": 0.15, "other": 0.1}
LEVEL_MIX = {"city": 0.5, "district": 0.45, "province": 0.05}
ROUTINE_SHARE = 1 / 150  # of a department's active entities, inspected once (at least MIN_ROUTINE)
MIN_ROUTINE = 25
FREQUENT = 12  # entities inspected often this winter (by AMR and ENV)
SCHEMA = {
    "inspection_date": pl.Date,
    "uscc": pl.String,
    "name": pl.String,
    "department": pl.String,
    "inspection_kind": pl.String,
    "level": pl.String,
}


def _days(rng: np.random.Generator, start: dt.date, end: dt.date, n: int) -> list[dt.date]:
    return [start + dt.timedelta(days=int(d)) for d in rng.integers(0, (end - start).days + 1, n)]


def _mix(rng: np.random.Generator, mix: dict[str, float], n: int) -> list[str]:
    return rng.choice(list(mix), size=n, p=np.array(list(mix.values())) / sum(mix.values())).tolist()


def _routine(rng: np.random.Generator, active: pl.DataFrame, department: str, year: int) -> pl.DataFrame:
    n = min(active.height, max(MIN_ROUTINE, int(active.height * ROUTINE_SHARE)))
    picked = active.sample(n, seed=int(rng.integers(2**31)))
    return picked.select("uscc", "name").with_columns(
        department=pl.lit(department),
        inspection_date=pl.Series(_days(rng, dt.date(year - 1, 10, 1), dt.date(year, 3, 31), n), dtype=pl.Date),
        inspection_kind=pl.Series(_mix(rng, KIND_MIX, n)),
        level=pl.Series(_mix(rng, LEVEL_MIX, n)),
    )


def _frequent(rng: np.random.Generator, both: pl.DataFrame, year: int) -> dict[str, pl.DataFrame]:
    """FREQUENT entities of `both` (active, listed by AMR and ENV): AMR twice, ENV once or twice, in
    January and February, of kinds that count (random, licence) and mostly at city level."""
    picked = both.sample(min(FREQUENT, both.height), seed=int(rng.integers(2**31)))
    out = {}
    for department, times in (("AMR", np.full(picked.height, 2)), ("ENV", rng.integers(1, 3, picked.height))):
        rows = picked.select("uscc", "name").select(pl.all().repeat_by(pl.Series(times)).explode())
        n = rows.height
        out[department] = rows.with_columns(
            department=pl.lit(department),
            inspection_date=pl.Series(_days(rng, dt.date(year, 1, 5), dt.date(year, 2, 27), n), dtype=pl.Date),
            inspection_kind=pl.Series(_mix(rng, {"random": 0.6, "licence": 0.4}, n)),
            level=pl.Series(_mix(rng, {"city": 0.8, "district": 0.2}, n)),
        )
    return out


def make_inspections(
    rng: np.random.Generator, listings: dict[str, pl.DataFrame], year: int, frequent: bool = True
) -> dict[str, pl.DataFrame]:
    """Department → its inspection records (SCHEMA), sorted by date, USCC, then the rest, for INSPECTING
    departments; without `frequent`, only the routine ones (a chunk of a city after its first)."""
    active = {d: listings[d].filter(pl.col("status") == "active").select("uscc", "name") for d in INSPECTING}
    both = active["AMR"].join(active["ENV"].select("uscc"), on="uscc", how="semi").sort("uscc")
    frequent_ones = _frequent(rng, both, year) if frequent else {}
    out = {}
    for department in INSPECTING:
        parts = [_routine(rng, active[department].sort("uscc"), department, year)]
        if department in frequent_ones:
            parts.append(frequent_ones[department])
        # the same inspection twice would be a duplicate row (quarantined): each is reported once
        out[department] = pl.concat(parts).cast(SCHEMA).unique(maintain_order=True).sort(pl.all())
    return out
