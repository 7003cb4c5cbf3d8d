"""How many objects each stratum (credit class) of a task draws (SPEC §4.4), in exact arithmetic.

* ratio tasks: k = min(N, max(min_count, min(max_count, ceil(ratio × N)))) per class: the ratio's
  ceiling, capped by the class's `max_count` (none: no cap), raised to its `min_count` (none: 0), never
  above N — with neither given, k = min(N, ceil(ratio × N)) as always;
* count tasks: the count split over the classes in proportion to their sizes by the largest
  remainder method (ties: class order A, B, C, D), never more than N in a class.
"""

from __future__ import annotations

import math
from fractions import Fraction

from jointdraw.transforms.plan import CREDIT_CLASSES, Task

CLASSES = CREDIT_CLASSES


def ratio_k(n: int, ratio: float, min_count: int | None = None, max_count: int | None = None) -> int:
    """The k of one stratum of N objects: min(N, max(min_count, min(max_count, ceil(ratio × N))))."""
    # Fraction(str(r)) is the decimal the plan wrote: 0.01 × 300 is exactly 3, not 3.0000000000000004
    k = math.ceil(Fraction(str(ratio)) * n)
    if max_count is not None:
        k = min(k, max_count)
    return min(n, max(min_count or 0, k))


def stratum_k(task: Task, sizes: dict[str, int]) -> dict[str, int]:
    """k per credit class for `task` given its eligible stratum sizes N."""
    if task.ratio is not None:
        rules = {c: task.class_ratio(c) for c in CLASSES}
        return {c: ratio_k(sizes.get(c, 0), r.ratio, r.min_count, r.max_count) for c, r in rules.items()}
    total = sum(sizes.get(c, 0) for c in CLASSES)
    count = min(task.count or 0, total)
    if total == 0:
        return dict.fromkeys(CLASSES, 0)
    quotas = {c: Fraction(count * sizes.get(c, 0), total) for c in CLASSES}
    k = {c: math.floor(q) for c, q in quotas.items()}
    by_remainder = sorted(CLASSES, key=lambda c: (-(quotas[c] - k[c]), CLASSES.index(c)))
    for c in by_remainder[: count - sum(k.values())]:
        k[c] += 1
    return k
