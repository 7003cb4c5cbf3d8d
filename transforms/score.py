"""The draw score (SPEC §4.4), in Python: what `verify` and the tests recompute the draw with.

    score = first 8 bytes, big-endian, of SHA-256(utf8(seed + "|" + key + "|" + uscc))

`key` is the task id, or the task's coordination group. The draw stage computes the same
score in DuckDB SQL (transforms/sql/draw_select.sql, `score_hex`); `verify` recomputes every
published draw with this function, so the two paths check each other.
"""

from __future__ import annotations

import hashlib

DRAW_ALGORITHM = (
    'jointdraw-draw-v1: score = first 8 bytes, big-endian, of SHA-256(utf8(seed + "|" + key + "|" + uscc)); '
    "per (task, credit class) the k lowest scores win, ties by uscc; "
    "k = min(N, max(min_count, min(max_count, ceil(ratio × N)))) (min_count 0, max_count none, unless the plan "
    "gives them per class) or a count split by largest remainder"
)


def score(seed: str, key: str, uscc: str) -> int:
    """The score as an unsigned 64-bit integer: lower wins."""
    return int.from_bytes(hashlib.sha256(f"{seed}|{key}|{uscc}".encode()).digest()[:8], "big")
