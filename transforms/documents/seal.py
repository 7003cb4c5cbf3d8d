"""The seal (封存值, issue 18): the SHA-256 of a bundle's final manifest.

The manifest lists every file of the bundle with its SHA-256, so one hash answers for all of them.
It is what people announce and compare: printed at the end of the run, appended to the plan's
audit log, shown on report.html and on the public notice page, and checked by
`jointdraw verify BUNDLE --seal HASH`.

A page cannot carry the hash of a manifest that lists the page's own hash. So a page that shows
the seal is written with a slot (64 zeros in `<code id="seal">`), listed in the manifest as
written, and the slot is filled once the manifest is final. Verify empties the slot again
(`page_with_empty_slot`) before comparing the page's hash, and checks the slot held the seal.

    seal_of(manifest_path)               -> the seal
    fill_seal(page, seal)                -> writes the seal into the page's slot
    page_with_empty_slot(text)           -> (seal shown, the text as the manifest hashed it)
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

SLOT = "0" * 64
SEAL_PAGES = ("notice.html", "report.html")  # the public pages that show the seal
_SHOWN = re.compile(r'(<code id="seal">)([0-9a-f]{64})(</code>)')


def seal_of(manifest_path: Path) -> str:
    return hashlib.sha256(Path(manifest_path).read_bytes()).hexdigest()


def seal_slot() -> str:
    """What a page template writes where the seal goes (the page is rendered before the seal exists)."""
    return SLOT


def fill_seal(page: Path, seal: str) -> None:
    text = Path(page).read_text(encoding="utf-8")
    filled, n = _SHOWN.subn(lambda m: m.group(1) + seal + m.group(3), text, count=1)
    if n != 1 or _SHOWN.search(text).group(2) != SLOT:
        raise ValueError(f"{page} has no empty seal slot")
    Path(page).write_text(filled, encoding="utf-8")


def page_with_empty_slot(text: str) -> tuple[str | None, str]:
    """(the seal a page shows or None, the page with its slot emptied: what the manifest hashed)."""
    found = _SHOWN.search(text)
    if found is None:
        return None, text
    return found.group(2), text[: found.start(2)] + SLOT + text[found.end(2) :]


def hash_with_empty_slot(page: Path) -> str:
    return hashlib.sha256(page_with_empty_slot(Path(page).read_text(encoding="utf-8"))[1].encode("utf-8")).hexdigest()
