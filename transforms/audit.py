"""The audit log of draw attempts (issue 11, started): every attempt that reaches the draw stage
appends an entry to the warehouse's `audit_log`, chained per plan by the hash of the previous
entry, so an edited, deleted or reordered entry shows, and a plan drawn with several seeds for
one commitment (seed shopping) shows too.

    entry = plan_id, seq, time, run_id, commitment, seed, seed_sources, draw_digest, operator, prev_hash
    entry_hash = SHA-256 of the entry as canonical JSON (sorted keys, no spaces, UTF-8)

A replacement draw (递补, issue 21) adds an entry with `event` redraw and its details as canonical
JSON (transforms/redraw.py):

    redraw entry = plan_id, seq, time, run_id, event, redraw, operator, prev_hash

A publication adds a seal entry to the same chain (issue 18): the SHA-256 of the bundle's final
manifest (transforms/documents/seal.py), for the draw (`event` publish) and for every results publication
(`event` results):

    seal entry = plan_id, seq, time, run_id, event, seal, operator, prev_hash

The first entry of a plan has prev_hash = 64 zeros. The draw digest is the SHA-256 over the
canonical draw: one line `task_id|credit_risk|uscc|score` per draw, in the published order.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
from typing import Any

import polars as pl

GENESIS = "0" * 64
ENTRY_FIELDS = (
    "plan_id",
    "seq",
    "time",
    "run_id",
    "commitment",
    "seed",
    "seed_sources",
    "draw_digest",
    "operator",
    "prev_hash",
)
SEAL_FIELDS = ("plan_id", "seq", "time", "run_id", "event", "seal", "operator", "prev_hash")
PUBLISH, RESULTS = "publish", "results"  # the events a seal entry records
# a replacement draw (递补, transforms/redraw.py): its details as canonical JSON in `redraw`
REDRAW_FIELDS = ("plan_id", "seq", "time", "run_id", "event", "redraw", "operator", "prev_hash")


def fields_of(entry: dict[str, Any]) -> tuple[str, ...]:
    """The fields an entry's hash covers: an attempt's, a seal's or a redraw's."""
    if is_attempt(entry):
        return ENTRY_FIELDS
    return REDRAW_FIELDS if entry.get("event") == "redraw" else SEAL_FIELDS


def is_attempt(entry: dict[str, Any]) -> bool:
    """A draw attempt, not a seal entry."""
    return not entry.get("event")


def attempts(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if is_attempt(e)]


def last_seal(entries: list[dict[str, Any]], event: str) -> str | None:
    """The seal of the plan's last publication of this kind, or None."""
    sealed = [e for e in sorted(entries, key=lambda e: e["seq"]) if e.get("event") == event]
    return sealed[-1]["seal"] if sealed else None


def draw_digest(draws: pl.DataFrame) -> str:
    """SHA-256 over the canonical draw (rows in the order given: draws.parquet's)."""
    lines = draws.select(
        pl.concat_str(
            pl.col("task_id"), pl.col("credit_risk"), pl.col("uscc"), pl.col("score").cast(pl.String), separator="|"
        )
    )
    return hashlib.sha256(("\n".join(lines.to_series().to_list()) + "\n").encode()).hexdigest()


def entry_hash(entry: dict[str, Any]) -> str:
    fields = fields_of(entry)
    canonical = json.dumps({k: entry[k] for k in fields}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def operator() -> str:
    """Who ran the attempt: the OS user and host."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def next_entry(previous: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    """The entry after `previous` (None: the plan's first), with its hash."""
    entry = {
        **fields,
        "seq": (previous["seq"] + 1) if previous else 1,
        "prev_hash": previous["entry_hash"] if previous else GENESIS,
    }
    return {**entry, "entry_hash": entry_hash(entry)}


def chain_problems(entries: list[dict[str, Any]]) -> list[str]:
    """What is wrong with a plan's chain (entries in stored order), naming the first broken link:
    an entry whose content no longer matches its hash (edited), a gap in the numbering or a
    previous-hash that is not the entry before's (deleted or reordered)."""
    expected_prev, problems = GENESIS, []
    for position, e in enumerate(sorted(entries, key=lambda e: e["seq"]), start=1):
        if e["seq"] != position:
            problems.append(f"entry {position} is missing: the chain jumps to entry {e['seq']} (deleted?)")
        elif entry_hash(e) != e["entry_hash"]:
            problems.append(f"entry {e['seq']} (run {e['run_id']}) does not match its hash: it was edited")
        elif e["prev_hash"] != expected_prev:
            problems.append(
                f"entry {e['seq']} (run {e['run_id']}) does not follow entry {e['seq'] - 1}: deleted or reordered"
            )
        if problems:
            return problems[:1]
        expected_prev = e["entry_hash"]
    return []


def seed_shopping(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Commitment → its attempts, for every commitment drawn with more than one distinct seed."""
    by_commitment: dict[str, list[dict[str, Any]]] = {}
    for e in sorted(attempts(entries), key=lambda e: e["seq"]):
        by_commitment.setdefault(e["commitment"], []).append(e)
    return {c: es for c, es in by_commitment.items() if len({e["seed"] for e in es}) > 1}


EVENT_PREFIX = "jointdraw"


def entry_event(entry: dict[str, Any], shopped: bool) -> dict[str, Any]:
    """A log entry as a Prefect event (prefect.events.emit_event's arguments), so the chain's head also
    lives in Prefect's event store and an automation can react to it: `jointdraw.draw.attempt` (with
    `seed_shopping`: this commitment has now been drawn with more than one seed) or
    `jointdraw.publish.sealed` / `jointdraw.results.sealed`."""
    kind = "draw.attempt" if is_attempt(entry) else f"{entry['event']}.sealed"
    if entry.get("event") == "redraw":
        kind = "team.redrawn"
    fields = fields_of(entry)
    return {
        "event": f"{EVENT_PREFIX}.{kind}",
        "resource": {
            "prefect.resource.id": f"{EVENT_PREFIX}.plan.{entry['plan_id']}",
            "prefect.resource.name": entry["plan_id"],
        },
        "payload": {
            **{k: entry[k] for k in fields},
            "entry_hash": entry["entry_hash"],
            **({"seed_shopping": shopped} if is_attempt(entry) else {}),
        },
    }
