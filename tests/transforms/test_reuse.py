"""Reusing what did not change (issue 23.4): the keys hold what a result depends on, and an earlier
result is taken only when its files are still the bytes its run recorded."""

import datetime as dt
import json
import os

import polars as pl

from jointdraw.transforms.contract.suites import inspector_rules, item_rules, object_rules
from jointdraw.transforms.storage.hashed_ahead import file_identity
from jointdraw.transforms.storage.layout import OutputRoot
from jointdraw.transforms.storage.reuse import (
    EarlierResults,
    date_cuts,
    ingest_key,
    merge_key,
    unchanged_since,
    validation_key,
)
from jointdraw.transforms.storage.runfolder import STAGE_RECORD, file_record, sha256_file, write_json, write_parquet

INGESTED = ["a" * 64, "b" * 64]  # the SHA-256 of a file's raw and typed Parquet, as ingest recorded them


def _typed(tmp_path, dates):
    return write_parquet(pl.DataFrame({"registered_on": dates}, schema={"registered_on": pl.Date}), tmp_path / "t.pq")


def test_a_run_date_that_would_change_a_verdict_changes_the_key(tmp_path):
    # registration dates 10 January and 15 March: validated on 1 March, 15 March is after the run date
    # (date_implausible); on 10 March still; on 20 March it is not any more, so that verdict would change
    typed = _typed(tmp_path, [dt.date(2026, 1, 10), dt.date(2026, 3, 15), None])

    def key(day):
        return validation_key("objects", "AMR", INGESTED, object_rules(day), typed)

    assert date_cuts(object_rules(dt.date(2026, 3, 1)), typed) == {"registered_on": "2026-01-10"}
    assert key(dt.date(2026, 3, 1)) == key(dt.date(2026, 3, 10))  # the same dates on either side: same verdicts
    assert date_cuts(object_rules(dt.date(2026, 3, 20)), typed) == {"registered_on": "2026-03-15"}
    assert key(dt.date(2026, 3, 20)) != key(dt.date(2026, 3, 1))
    assert key(dt.date(2026, 1, 9)) != key(dt.date(2026, 3, 1))  # earlier than every date: all of them after it
    # a file without dates gives the same verdicts on any day
    (tmp_path / "x").mkdir()
    empty = _typed(tmp_path / "x", [None, None])
    assert validation_key("objects", "AMR", INGESTED, object_rules(dt.date(2026, 3, 1)), empty) == validation_key(
        "objects", "AMR", INGESTED, object_rules(dt.date(2027, 1, 1)), empty
    )


def test_the_key_holds_the_rows_the_rules_and_what_names_the_file(tmp_path):
    typed = _typed(tmp_path, [dt.date(2026, 1, 10)])
    key = validation_key("inspectors", "AMR", INGESTED, inspector_rules(["AMR-001", "AMR-002"]), typed)
    # inspectors' item scopes must name accepted items: another item list is another key
    assert key != validation_key("inspectors", "AMR", INGESTED, inspector_rules(["AMR-001"]), typed)
    assert key == validation_key("inspectors", "AMR", INGESTED, inspector_rules(["AMR-002", "AMR-001"]), typed)
    assert key != validation_key("inspectors", "AMR", ["c" * 64, INGESTED[1]], inspector_rules(["AMR-001"]), typed)
    assert key != validation_key("inspectors", "ENV", INGESTED, inspector_rules(["AMR-001", "AMR-002"]), typed)
    assert validation_key("items", "AMR", INGESTED, item_rules(), typed) != key
    # a department file's ingest: its bytes and its name under the inbox (department, kind, format)
    assert ingest_key("AMR/objects.csv", "objects", "a" * 64) != ingest_key("AMR/objects.csv", "objects", "b" * 64)
    assert ingest_key("AMR/objects.csv", "objects", "a" * 64) != ingest_key("ENV/objects.csv", "objects", "a" * 64)
    assert ingest_key("AMR/objects.csv", "objects", "a" * 64) != ingest_key("AMR/objects.xlsx", "objects", "a" * 64)
    first = [{"path": "accepted/objects/AMR.parquet", "sha256": "a" * 64}]
    assert merge_key(first) != merge_key([{**first[0], "sha256": "b" * 64}])


def _run_with_result(out, run_id, content: bytes, key="k1"):
    """A run folder whose ingest recorded one file's output under `key`, as a finished stage does."""
    run = OutputRoot(out).run_folder(run_id)
    write_json({"run_id": run_id}, run.path / "run.json")
    stage = run.stage("ingest")
    output = stage / "objects" / "AMR.parquet"
    output.parent.mkdir(parents=True)
    output.write_bytes(content)
    entry = {"department": "AMR", "kind": "objects", "outputs": [file_record(output, 1, stage)], "reuse": {"key": key}}
    write_json({"stage": "ingest", "files": [entry]}, stage / STAGE_RECORD)
    return run, output


def test_an_earlier_result_is_taken_only_while_its_files_are_what_its_run_recorded(tmp_path):
    out = tmp_path / "out"
    _, older = _run_with_result(out, "older", b"rows")
    os.utime(older.parents[1] / STAGE_RECORD, (1, 1))  # recorded long ago: the newer run is asked first
    _, newer = _run_with_result(out, "newer", b"rows")
    here = OutputRoot(out).run_folder("here")
    write_json({"run_id": "here"}, here.path / "run.json")
    into = here.stage("ingest")

    taken = EarlierResults.of(here, "ingest").take("k1", into)
    assert taken is not None and taken.run_id == "newer" and taken.record_here()["reused_from"] == {"run_id": "newer"}
    assert (into / "objects" / "AMR.parquet").stat().st_ino == newer.stat().st_ino  # a hard link, not a copy
    assert EarlierResults.of(here, "ingest").take("another key", into) is None

    # the newer run's file edited in place (its bytes changed): the older run's, still intact, is taken
    (into / "objects" / "AMR.parquet").unlink()
    with open(newer, "r+b") as f:
        f.write(b"R")
    taken = EarlierResults.of(here, "ingest").take("k1", into)
    assert taken is not None and taken.run_id == "older"
    assert (into / "objects" / "AMR.parquet").read_bytes() == b"rows"

    # the older run's file deleted too: nothing is taken, and nothing is left behind
    (into / "objects" / "AMR.parquet").unlink()
    older.unlink()
    assert EarlierResults.of(here, "ingest").take("k1", into) is None
    assert list((into / "objects").iterdir()) == []
    # a run never takes from itself (its own files are the ones being redone)
    newer.write_bytes(b"rows")
    assert EarlierResults.of(OutputRoot(out).run_folder("newer"), "ingest").take("k1", into) is None
    assert EarlierResults.of(here, "ingest").take("k1", into).run_id == "newer"  # intact again: taken


def test_an_earlier_file_this_run_verified_already_is_not_read_again(tmp_path, monkeypatch):
    """An earlier run's file taken twice by one run (as the typed rows in ingest and, the same inode, as the accepted
    rows in validate) is read once: the second link finds it known and unchanged (hashed_ahead.same_bytes)."""
    from jointdraw.transforms.storage import hashed_ahead

    out = tmp_path / "out"
    _, earlier = _run_with_result(out, "earlier", b"rows")
    written = earlier.stat().st_mtime_ns - 60 * 10**9  # its bytes written a minute ago, as a finished run's are
    os.utime(earlier, ns=(written, written))
    here = OutputRoot(out).run_folder("here")
    write_json({"run_id": "here"}, here.path / "run.json")
    reads, read = [], hashed_ahead.sha256_of
    monkeypatch.setattr(hashed_ahead, "sha256_of", lambda path: reads.append(path) or read(path))
    for into in (here.stage("ingest"), here.path / "again"):
        assert EarlierResults.of(here, "ingest").take("k1", into) is not None
    assert len(reads) == 1
    os.chmod(earlier, 0o600)  # changed by someone else since: verified again
    assert EarlierResults.of(here, "ingest").take("k1", here.path / "third") is not None and len(reads) == 2


def test_a_record_naming_a_file_outside_its_stage_folder_is_not_followed(tmp_path):
    out = tmp_path / "out"
    run, output = _run_with_result(out, "src", b"rows")
    (tmp_path / "secret").write_bytes(b"rows")  # the bytes the record's SHA-256 names, outside the stage folder
    record = json.loads((output.parents[1] / STAGE_RECORD).read_text(encoding="utf-8"))
    record["files"][0]["outputs"][0]["path"] = "../../../../secret"
    write_json(record, output.parents[1] / STAGE_RECORD)
    here = OutputRoot(out).run_folder("here")
    write_json({"run_id": "here"}, here.path / "run.json")
    assert EarlierResults.of(here, "ingest").take("k1", here.stage("ingest")) is None


def test_a_file_replaced_while_it_was_read_gets_no_key(tmp_path):
    path = tmp_path / "AMR" / "objects.csv"
    path.parent.mkdir()
    path.write_bytes(b"uscc,name\n")
    before, sha = file_identity(path), sha256_file(path)
    key = ingest_key("AMR/objects.csv", "objects", sha)
    record = {"kind": "objects", "source": {"path": "AMR/objects.csv", "sha256": sha}}
    assert unchanged_since(path, before, key, record)
    # the department's system replaced the file after it was hashed: what ingest read may be either version
    replaced = write_parquet(pl.DataFrame({"x": [1]}), tmp_path / "new")
    os.replace(replaced, path)
    assert not unchanged_since(path, before, key, record)
    changed_sha256 = {**record, "source": {**record["source"], "sha256": "0"}}
    assert not unchanged_since(path, file_identity(path), key, changed_sha256)
