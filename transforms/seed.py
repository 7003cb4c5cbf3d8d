"""The draw's seed (SPEC §5): a given string, a key string from public numbers (RFC 3797 §4),
or, without either, a fresh random seed from the OS's secure source — always recorded.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass


class SeedError(ValueError):
    """Seed sources that are not lists of whole numbers."""


def rfc3797_key(sources: list[str]) -> str:
    """The RFC 3797 §4 key string: per source, its numbers sorted ascending, each in decimal
    followed by '.', the source closed by '/'; sources in the order given.

    >>> rfc3797_key(["9319", "2 5 12 8 10", "9 18 26 34 41 45"])
    '9319./2.5.8.10.12./9.18.26.34.41.45./'
    """
    parts = []
    for i, source in enumerate(sources, start=1):
        tokens = [t for t in re.split(r"[\s,;]+", source.strip()) if t]
        if not tokens or not all(t.isdigit() for t in tokens):
            raise SeedError(f"seed source {i} ({source!r}) must be whole numbers separated by spaces or commas")
        parts.append("".join(f"{n}." for n in sorted(int(t) for t in tokens)) + "/")
    return "".join(parts)


@dataclass(frozen=True)
class Seed:
    value: str
    origin: str  # "given", "public numbers (RFC 3797)" or "generated"
    sources: tuple[str, ...] = ()


def resolve_seed(seed: str | None, sources: list[str] | None) -> Seed:
    """The seed to use: a given string wins, then public numbers, else a generated one."""
    if seed:
        return Seed(seed, "given")
    if sources:
        return Seed(rfc3797_key(sources), "public numbers (RFC 3797)", tuple(sources))
    return Seed(secrets.token_hex(16), "generated")


def public_seed_problems(
    seed: str | None, sources: list[str] | None, announced_at: dt.datetime, committed_at: dt.datetime
) -> list[str]:
    """Why a draw under `seed_policy: public` may not run: a plain seed (anyone could pick it),
    no public numbers, or a commitment made after the numbers were announced (whoever committed
    could have known them)."""
    problems = []
    if seed:
        problems.append(
            "seed_policy is public: a plain seed is refused (it could be chosen); give the announced numbers "
            "(--seed-source, or seed_sources in the plan)"
        )
    elif not sources:
        problems.append(
            "seed_policy is public: the draw needs the announced public numbers "
            "(--seed-source, or seed_sources in the plan)"
        )
    if committed_at >= announced_at:
        problems.append(
            f"seed_policy is public: the commitment was made at {committed_at.isoformat()}, "
            f"not before the numbers were announced at {announced_at.isoformat()}: "
            "commit again before the next announcement"
        )
    return problems
