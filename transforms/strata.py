"""How many objects each stratum (credit class) of a task draws (SPEC §4.4), in exact arithmetic.

* ratio tasks: k = ceil(ratio × N) per class;
* count tasks: the count split over the classes in proportion to their sizes by the largest
  remainder method (ties: class order A, B, C, D), never more than N in a class.
"""

from __future__ import annotations

import math
from fractions import Fraction

from jointdraw.transforms.plan import Task

CLASSES = ("A", "B", "C", "D")


def stratum_k(task: Task, sizes: dict[str, int]) -> dict[str, int]:
    """k per credit class for `task` given its eligible stratum sizes N."""
    if task.ratio is not None:
        # Fraction(str(r)) is the decimal the plan wrote: 0.01 × 300 is exactly 3, not 3.0000000000000004
        return {
            c: min(sizes.get(c, 0), math.ceil(Fraction(str(task.ratio.get(c, 0))) * sizes.get(c, 0))) for c in CLASSES
        }
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
