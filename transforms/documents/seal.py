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
_SHOWN_BYTES = re.compile(_SHOWN.pattern.encode("ascii"))  # the same, on a page's bytes (the slot is ASCII)


def seal_of(manifest_path: Path) -> str:
    return hashlib.sha256(Path(manifest_path).read_bytes()).hexdigest()


def seal_slot() -> str:
    """What a page template writes where the seal goes (the page is rendered before the seal exists)."""
    return SLOT


def fill_seal(page: Path, seal: str) -> None:
    """Writes the seal into the page's empty slot: its 64 bytes, in place (the notice page of a quarterly plan
    at 8M is 20 MB: decoded, filled and written whole, 0.1 s). In place is safe here only: the page is the
    bundle's own, just written into its staging folder by this publish and linked nowhere else."""
    if not re.fullmatch(r"[0-9a-f]{64}", seal):
        raise ValueError(f"not a seal: {seal!r}")
    found = _SHOWN_BYTES.search(Path(page).read_bytes())
    if found is None or found.group(2) != SLOT.encode("ascii"):
        raise ValueError(f"{page} has no empty seal slot")
    with open(page, "r+b") as f:
        f.seek(found.start(2))
        f.write(seal.encode("ascii"))


def page_with_empty_slot(text: str) -> tuple[str | None, str]:
    """(the seal a page shows or None, the page with its slot emptied: what the manifest hashed)."""
    found = _SHOWN.search(text)
    if found is None:
        return None, text
    return found.group(2), text[: found.start(2)] + SLOT + text[found.end(2) :]


def hash_with_empty_slot(page: Path) -> str:
    """The SHA-256 of the page with its slot emptied (`page_with_empty_slot`), taken on its bytes."""
    data = Path(page).read_bytes()
    if found := _SHOWN_BYTES.search(data):
        data = data[: found.start(2)] + SLOT.encode("ascii") + data[found.end(2) :]
    return hashlib.sha256(data).hexdigest()
