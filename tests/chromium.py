"""Headless Chromium (installed by scripts/apps.sh) as the tests open published pages: its own profile,
no network (a dead proxy: any fetch would fail), a virtual time budget for the page's scripts."""

from __future__ import annotations

import subprocess
import tempfile


def chromium_flags(budget_ms: int = 5000, *extra: str) -> list[str]:
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tempfile.mkdtemp()}",
        f"--virtual-time-budget={budget_ms}",
        "--proxy-server=127.0.0.1:9",
        *extra,
    ]


def chromium_dom(url: str, budget_ms: int = 5000) -> str:
    """The page's DOM after its scripts ran."""
    return subprocess.run(
        ["chromium", *chromium_flags(budget_ms), "--dump-dom", url], capture_output=True, text=True, timeout=120
    ).stdout
