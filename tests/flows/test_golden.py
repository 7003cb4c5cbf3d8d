"""Nothing users see changes while the code moves (issue 20): the demo city (the generator's
arguments of scripts/demo.sh: 20,000 object rows, seed 2021, planted errors) run through every
stage must publish exactly the files recorded in tests/flows/golden/demo-city.json, and write
exactly the recorded stage.json of every stage, but what differs between two runs by design
(seconds, the run's date, paths, the audit entry's hash and the seal, the reuse keys; the manifest's
VOLATILE fields).

After a change that is meant to change outputs, record them again and say so in the commit:
    JOINTDRAW_UPDATE_GOLDEN=1 bash scripts/test.sh tests/flows/test_golden.py
"""

import hashlib
import json
import os
from pathlib import Path

from jointdraw.transforms.storage.bundle import bundle_file
from jointdraw.transforms.storage.runfolder import STAGES
from tests.flows.test_publish_stage import VOLATILE

GOLDEN = Path(__file__).parent / "golden" / "demo-city.json"
# how long a stage took, the day it ran, the hash of the audit entry (it covers the entry's time), the
# seal (it covers the manifest's timeline) and the reuse keys (they cover the code: transforms/storage/reuse.py)
STAGE_VOLATILE = {"seconds", "run_date", "entry_hash", "seal", "reuse"}


def _without(value, keys: set[str]):
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def fingerprint(run_dir: Path, inbox: Path) -> dict[str, str]:
    """Published file → its SHA-256 as the manifest lists it; the manifest and each stage.json → the
    SHA-256 of what must not change in them (paths written as OUT/ and INBOX/)."""
    out = run_dir.parent.parent
    bundle = out / "published" / "SZ-2026-ANNUAL"
    manifest = json.loads(bundle_file(bundle, "manifest.json").read_text(encoding="utf-8"))
    found = {f["path"]: f["sha256"] for f in manifest["files"]}
    found["manifest.json (but its volatile fields)"] = _digest({k: v for k, v in manifest.items() if k not in VOLATILE})
    for number, stage in enumerate(STAGES, start=1):
        text = (run_dir / f"{number:02d}_{stage}" / "stage.json").read_text(encoding="utf-8")
        text = text.replace(str(inbox), "INBOX").replace(str(out), "OUT")
        found[f"{number:02d}_{stage}/stage.json"] = _digest(_without(json.loads(text), STAGE_VOLATILE))
    return dict(sorted(found.items()))


def test_the_demo_city_publishes_and_records_what_it_always_did(dirty_run, dirty_city):
    now = fingerprint(dirty_run, dirty_city / "inbox")
    if os.environ.get("JOINTDRAW_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(now, indent=1) + "\n", encoding="utf-8")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    changed = sorted(k for k in set(golden) | set(now) if golden.get(k) != now.get(k))
    assert changed == [], f"{len(changed)} outputs differ from tests/flows/golden/demo-city.json: {changed[:20]}"
