"""Reusing what did not change (issue 23.4), on the demo city: a second run in the same output root
takes every department file's ingest and validation, and the merge, from the first and publishes the
same bundle; after one department's file changed only that file (and the merge) is computed again, and
the bundle is the one a run with --no-reuse publishes."""

import json
import os
import shutil
from collections import Counter

import polars as pl

from jointdraw.cli.commands import main
from jointdraw.flows.plan_run import plan_run
from jointdraw.transforms.documents.manifest import file_digest
from jointdraw.transforms.merge import merge_frames
from jointdraw.transforms.storage import hashed_ahead as ahead
from jointdraw.transforms.storage.bundle import bundle_file
from jointdraw.transforms.storage.runfolder import DIRECTORY_PARTS, directory_parts, file_record, inputs_from
from jointdraw.transforms.storage.warehouse import connect_warehouse, directory_key
from tests.conftest import plan_path
from tests.flows.test_publish_stage import VOLATILE

PLAN_ID = "SZ-2026-ANNUAL"
CHANGED = ("EDU", "objects")  # the department file the quarterly inbox brings anew


def _bundle_differences(first, second) -> list[str]:
    """The files of two bundles that differ (the manifest: but its volatile fields, README "Publish")."""
    a, b = (json.loads(bundle_file(x, "manifest.json").read_text(encoding="utf-8")) for x in (first, second))
    differences = (
        []
        if {k: v for k, v in a.items() if k not in VOLATILE} == {k: v for k, v in b.items() if k not in VOLATILE}
        else ["manifest.json"]
    )
    return differences + [
        f["path"] for f in a["files"] if file_digest(first, f["path"]) != file_digest(second, f["path"])
    ]


def _out_with_the_first_run(dirty_run, out):
    """An output root holding a copy of the demo city's first run (its own files: nothing shared with the fixture)."""
    shutil.copytree(dirty_run, out / "runs" / dirty_run.name)
    return out


def _root_with_the_first_run(dirty_run, out):
    """A copy of the output root of the demo city's first run: the run, its bundle, its warehouse."""
    shutil.copytree(dirty_run.parent.parent, out)
    return out


def _warehouse(out, query):
    con = connect_warehouse(out, read_only=True)
    try:
        return con.sql(query).fetchall()
    finally:
        con.close()


def _stage(out, run_id, folder):
    return json.loads((out / "runs" / run_id / folder / "stage.json").read_text(encoding="utf-8"))


def _taken_from(record) -> dict[tuple[str, str], str | None]:
    """(department, kind) → the run a file was taken from (None: computed in this run)."""
    return {(f["department"], f["kind"]): (f.get("reused_from") or {}).get("run_id") for f in record["files"]}


def _in_scope_taken_from(out, run_id) -> list[str | None]:
    """Each directory part's in-scope pairs: the run the draw took them from (None: found in this run)."""
    parts = _stage(out, run_id, "05_draw")["in_scope_pairs"]["parts"]
    return [(p.get("reused_from") or {}).get("run_id") for p in parts]


def _pages(run_dir) -> list[str]:
    """The batches Data Docs shows a validation page for (`AMR objects`, …, the file inventories)."""
    return sorted(
        p.parent.parent.name for p in (run_dir / "02_validate" / "validation" / "validations").rglob("*.html")
    )


def test_a_second_run_reuses_every_file_and_the_merge_and_publishes_the_same_bytes(
    prefect_server, dirty_run, dirty_city, tmp_path, monkeypatch
):
    out = _out_with_the_first_run(dirty_run, tmp_path / "out")
    reads = Counter()  # inode → how many times its bytes were hashed

    def counted(path, sha256_of=ahead.sha256_of):
        reads[os.stat(path).st_ino] += 1
        return sha256_of(path)

    monkeypatch.setattr(ahead, "sha256_of", counted)
    summary = plan_run(plan=str(plan_path(dirty_city)), inbox=str(dirty_city / "inbox"), out=str(out), run_id="again")
    # what the log says: per file, and in each stage's line
    assert summary["stages"]["ingest"].line().endswith("40 files (40 of 40 files reused from earlier runs)")
    assert all(line.endswith("— reused from run dirty") for _, line in summary["stages"]["validate"].file_lines())
    assert summary["stages"]["merge"].line().startswith("reused from run dirty: ")
    ingest, validate = _stage(out, "again", "01_ingest"), _stage(out, "again", "02_validate")
    assert set(_taken_from(ingest).values()) == {"dirty"} and len(ingest["files"]) == 40
    assert set(_taken_from(validate).values()) == {"dirty"} and len(validate["files"]) == 40
    merge = _stage(out, "again", "03_merge")
    assert merge["reused_from"] == {"run_id": "dirty"}
    # the draw's in-scope pairs too (the same directory parts and task scopes): only the exclusions taken off again
    assert _in_scope_taken_from(out, "again") == ["dirty"]
    assert "eligible pairs (the in-scope pairs reused from run dirty) in " in summary["stages"]["draw"].line()
    # what was taken is what the first run recorded, linked, not copied
    assert [f["outputs"] for f in validate["files"]] == [
        f["outputs"] for f in _stage(out, "dirty", "02_validate")["files"]
    ]
    taken, source = (out / "runs" / r / "03_merge" / "directory-000.parquet" for r in ("again", "dirty"))
    assert taken.stat().st_ino == source.stat().st_ino
    # verified once (reuse.py), then known through the links into the merge and the commit (hashed_ahead.py)
    assert reads[taken.stat().st_ino] == 1
    # Data Docs still show every file's validation (the taken files' kept GX results)
    assert _pages(out / "runs" / "again") == _pages(dirty_run) and len(_pages(dirty_run)) == 44
    assert _bundle_differences(dirty_run.parent.parent / "published" / PLAN_ID, out / "published" / PLAN_ID) == []
    # the next command in this output root (a new process: it knows nothing yet) reads none of them again: the
    # inbox's files and the results it takes are known from the output root's store (hashed_ahead.py), unchanged
    inbox = {f.stat().st_ino for f in (dirty_city / "inbox").rglob("*") if f.is_file()}
    stored = json.loads((out / "known_digests.json").read_text(encoding="utf-8"))["files"]
    assert {f["inode"] for f in stored} >= inbox | {taken.stat().st_ino}
    for known in ("_KNOWN", "_NAMES", "_AHEAD"):
        monkeypatch.setattr(ahead, known, {})
    reads.clear()
    plan_run(plan=str(plan_path(dirty_city)), inbox=str(dirty_city / "inbox"), out=str(out), run_id="third")
    assert _stage(out, "third", "03_merge")["reused_from"] == {"run_id": "again"}
    assert not reads.keys() & (inbox | {taken.stat().st_ino}), "an unchanged file was read again"


def _with_one_row_changed(dirty_city, inbox):
    """The city's inbox with one name changed in one row of EDU's objects file and its third row gone (the rest
    byte for byte)."""
    shutil.copytree(dirty_city / "inbox", inbox)
    path = inbox / "EDU" / "objects.csv"
    lines = path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    name = lines[1].split(",")[1]
    lines[1] = lines[1].replace(name, name + "（分部）", 1)
    del lines[3]
    path.write_text("".join(lines), encoding="utf-8-sig")
    return inbox


def test_a_changed_file_is_computed_again_and_the_bundle_is_the_one_without_reuse(
    prefect_server, dirty_run, dirty_city, tmp_path
):
    inbox = _with_one_row_changed(dirty_city, tmp_path / "inbox")
    reusing, fresh = (_root_with_the_first_run(dirty_run, tmp_path / name) for name in ("reusing", "fresh"))
    plan_run(plan=str(plan_path(dirty_city)), inbox=str(inbox), out=str(reusing), run_id="q2")
    for folder in ("01_ingest", "02_validate"):
        taken = _taken_from(_stage(reusing, "q2", folder))
        assert taken.pop(CHANGED) is None, folder  # computed
        assert set(taken.values()) == {"dirty"}, folder  # every other file, EDU's items and inspectors too
    merge = _stage(reusing, "q2", "03_merge")
    assert "reused_from" not in merge  # its inputs changed: merged again, from the first run's
    assert merge["updated_from"]["run_id"] == "dirty" and merge["updated_from"]["departments"] == ["EDU"]
    assert 0 < merge["updated_from"]["entities_merged_again"] < merge["entities"] / 10
    # EDU's file was sent whole again: of its 93 records, only the entities of the one renamed and the one gone are
    # merged again (its other records moved up a line: the same records), none without a USCC
    edu = pl.read_parquet(reusing / "runs" / "q2" / "02_validate" / "accepted" / "objects" / "EDU.parquet")
    assert merge["updated_from"]["entities_merged_again"] == 2 and edu["uscc"].null_count() == 0 and edu.height > 90
    assert _in_scope_taken_from(reusing, "q2") == [None]  # another directory: drawn again

    args = ["run", str(plan_path(dirty_city)), "--inbox", str(inbox), "--out", str(fresh), "--run-id", "q2"]
    assert main([*args, "--no-reuse"]) == 0
    for folder in ("01_ingest", "02_validate", "03_merge", "05_draw"):
        assert "reused_from" not in json.dumps(_stage(fresh, "q2", folder)), folder
    assert json.loads((fresh / "runs" / "q2" / "run.json").read_text(encoding="utf-8"))["reuse"] is False
    # merged again, the directory, its conflicts, links and counts are those of merging everything
    merged_again, merged = (out / "runs" / "q2" / "03_merge" for out in (reusing, fresh))
    assert pl.read_parquet(directory_parts(merged_again)).equals(pl.read_parquet(directory_parts(merged)))
    for name in ("conflicts.parquet", "conflicts.csv", "links.csv", "unlinked.csv", "type_conflicts.csv"):
        assert (merged_again / name).read_bytes() == (merged / name).read_bytes(), name
    counts = ("records_in", "entities", "entities_listed_by_several_departments", "entities_by_link")
    assert [merge[c] for c in counts] == [_stage(fresh, "q2", "03_merge")[c] for c in counts]
    assert _bundle_differences(reusing / "published" / PLAN_ID, fresh / "published" / PLAN_ID) == []
    # the changed department's name reached the directory, so the bundle is not simply the first run's
    assert _bundle_differences(dirty_run.parent.parent / "published" / PLAN_ID, fresh / "published" / PLAN_ID)
    # the warehouse stores the directory merged again as its entities merged again, against the first run's (kept,
    # though no run names it now); its snapshot is the one of the directory merged whole
    snapshot = "select * exclude (run_id) from snapshots order by all"
    assert _warehouse(reusing, snapshot) == _warehouse(fresh, snapshot)
    [(base, kept, stored, hidden)] = _warehouse(
        reusing,
        "select b.base, (select count(*) from directories where directory = b.base), "
        "(select count(*) from directories where directory = b.directory), "
        "(select count(*) from directory_hidden where directory = b.directory) from directory_bases b",
    )
    first = [f["sha256"] for f in inputs_from(dirty_run, "commit", DIRECTORY_PARTS)]
    assert base == directory_key(first) and kept == _stage(dirty_run.parent.parent, "dirty", "03_merge")["entities"]
    assert 0 < stored <= hidden == merge["updated_from"]["entities_merged_again"]
    assert _warehouse(fresh, "select count(*) from directory_bases") == [(0,)]  # merged whole: stored whole


def test_a_file_sent_again_in_another_order_merges_nothing_again_and_the_later_stages_take_their_work(
    prefect_server, dirty_run, dirty_city, tmp_path
):
    """EDU's objects file sent again with its first two rows swapped: its records are the same, so no entity is
    merged again and the first run's directory files are this run's (linked); from their SHA-256 the commit takes
    the directory's digest and the draw its pairs in scope from the first run. The bundle is the one without
    reuse."""
    inbox = tmp_path / "inbox"
    shutil.copytree(dirty_city / "inbox", inbox)
    path = inbox / "EDU" / "objects.csv"
    lines = path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]
    path.write_text("".join(lines), encoding="utf-8-sig")
    reusing, fresh = (_root_with_the_first_run(dirty_run, tmp_path / name) for name in ("reusing", "fresh"))
    plan_run(plan=str(plan_path(dirty_city)), inbox=str(inbox), out=str(reusing), run_id="q2")
    merge = _stage(reusing, "q2", "03_merge")
    assert merge["updated_from"]["run_id"] == "dirty" and merge["updated_from"]["entities_merged_again"] == 0
    first, now = (inputs_from(run, "commit", DIRECTORY_PARTS) for run in (dirty_run, reusing / "runs" / "q2"))
    assert [f["sha256"] for f in now] == [f["sha256"] for f in first]
    assert _stage(reusing, "q2", "04_commit")["directory_sha256_from"] == "dirty"
    assert _in_scope_taken_from(reusing, "q2") == ["dirty"]

    args = ["run", str(plan_path(dirty_city)), "--inbox", str(inbox), "--out", str(fresh), "--run-id", "q2"]
    assert main([*args, "--no-reuse"]) == 0
    assert _bundle_differences(reusing / "published" / PLAN_ID, fresh / "published" / PLAN_ID) == []


def test_a_directory_merged_again_keeps_its_key_ranges_and_the_draw_takes_the_pairs_of_those_nothing_changed_in(
    prefect_server, dirty_run, dirty_city, tmp_path, monkeypatch
):
    """The first run merged (and drew) again in four key ranges; then EDU's file sent again with a name changed and a
    row gone: two entities merged again. The directory is cut where the first one was: the files of the ranges
    without an entity merged again are the first run's (linked: the same SHA-256), and the draw takes their in-scope
    pairs from it, finding only the others'. The directory is the one merged whole; the draws and every in-scope
    file are those of drawing without reuse."""
    from jointdraw.transforms import settings

    root = _root_with_the_first_run(dirty_run, tmp_path / "out")
    records = _stage(root, "dirty", "03_merge")["records_in"]
    monkeypatch.setattr(settings, "MERGE_PARTITION_RECORDS", records // 4 + 1)  # four ranges
    plan = str(plan_path(dirty_city))
    plan_run(
        plan=plan, inbox=str(dirty_city / "inbox"), out=str(root), run_id="dirty", start_at="merge", stop_after="draw"
    )
    inbox = _with_one_row_changed(dirty_city, tmp_path / "inbox")
    summary = plan_run(plan=plan, inbox=str(inbox), out=str(root), run_id="q2", stop_after="draw")

    merge = _stage(root, "q2", "03_merge")
    assert merge["updated_from"]["run_id"] == "dirty" and merge["updated_from"]["entities_merged_again"] == 2
    first, now = (inputs_from(root / "runs" / r, "commit", DIRECTORY_PARTS) for r in ("dirty", "q2"))
    assert len(first) == len(now) == 4
    same = [a["sha256"] == b["sha256"] for a, b in zip(first, now, strict=True)]
    assert 2 <= sum(same) < 4  # two entities changed, in one range or two
    assert _in_scope_taken_from(root, "q2") == ["dirty" if kept else None for kept in same]
    line = summary["stages"]["draw"].line()
    assert f"eligible pairs (the in-scope pairs of {sum(same)} of 4 parts reused from run dirty) in " in line
    accepted = sorted((root / "runs" / "q2" / "02_validate" / "accepted" / "objects").glob("*.parquet"))
    whole, _ = merge_frames(pl.read_parquet(accepted))
    assert pl.read_parquet(directory_parts(root / "runs" / "q2" / "03_merge")).equals(whole)

    draw = root / "runs" / "q2" / "05_draw"
    reused = {p.name: p.read_bytes() for p in [draw / "draws.parquet", *sorted(draw.glob("in-scope-*.parquet"))]}
    plan_run(plan=plan, inbox=str(inbox), out=str(root), run_id="q2", start_at="draw", stop_after="draw", reuse=False)
    assert "reused_from" not in json.dumps(_stage(root, "q2", "05_draw"))
    assert {name: (draw / name).read_bytes() for name in reused} == reused


def test_a_merge_is_done_again_only_from_a_like_merge_of_this_code(tmp_path):
    """Which earlier merges a merge may be done again from (flows/merge.py `_earlier_merges`), most alike first (the
    fewest rows gained or lost, then the fewest bytes, in the files that differ): merged by this code (its key is
    what this code gives its inputs), from files of the same departments, however much of them differs (the market
    regulator's file, most of the city's, is sent again each quarter: how many entities differ decides,
    `merge_again`); and an earlier merge whose files are no longer what it recorded is not used (`still_recorded`)."""
    from jointdraw.flows.merge import _earlier_merges
    from jointdraw.transforms.storage.layout import RunFolder
    from jointdraw.transforms.storage.reuse import EarlierResults, merge_key, still_recorded

    def inputs(**sha):  # department → (SHA-256 character, bytes)
        return [{"path": f"accepted/objects/{d}.parquet", "sha256": c * 64, "bytes": n} for d, (c, n) in sha.items()]

    def earlier(run_id, files, key=None):
        folder = tmp_path / "runs" / run_id
        (folder / "03_merge").mkdir(parents=True)
        (folder / "run.json").write_text("{}", encoding="utf-8")
        record = {"inputs": files, "outputs": [], "reuse": {"key": key or merge_key(files)}}
        (folder / "03_merge" / "stage.json").write_text(json.dumps(record), encoding="utf-8")

    now = inputs(AMR=("a", 900), EDU=("e", 40), WAT=("w", 60))
    earlier("one-small-file", inputs(AMR=("a", 900), EDU=("e", 40), WAT=("v", 50)))  # WAT: 110 of 1,000 bytes
    earlier("two-files", inputs(AMR=("a", 900), EDU=("d", 40), WAT=("v", 50)))
    earlier("the-big-file", inputs(AMR=("b", 900), EDU=("e", 40), WAT=("w", 60)))  # 1,800 bytes differ: the last
    earlier("other-code", inputs(AMR=("a", 900), EDU=("e", 40), WAT=("v", 50)), key="0" * 64)
    earlier("another-department", inputs(AMR=("a", 900), EDU=("e", 40), HLT=("w", 60)))
    earlier("the-same-files", now)  # taken whole, not merged again (`EarlierResults.take`)
    found = _earlier_merges(EarlierResults.of(RunFolder(tmp_path / "runs" / "this"), "merge"), now)
    assert [(folder.parent.name, changed) for folder, _, changed in found] == [
        ("one-small-file", ["accepted/objects/WAT.parquet"]),
        ("two-files", ["accepted/objects/EDU.parquet", "accepted/objects/WAT.parquet"]),
        ("the-big-file", ["accepted/objects/AMR.parquet"]),
    ]
    # with the accepted files there, the fewest rows gained or lost come first: AMR's file sent again whole, as many
    # rows as before, before WAT's a row longer than it was (fewer bytes, but a record more at least)
    accepted = {
        "this": {"AMR": 4, "EDU": 2, "WAT": 3},
        "one-small-file": {"WAT": 2},
        "two-files": {"EDU": 2, "WAT": 2},
        "the-big-file": {"AMR": 4},
    }
    for run_id, rows in accepted.items():
        for department, n in rows.items():
            path = tmp_path / "runs" / run_id / "02_validate" / "accepted" / "objects" / f"{department}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pl.DataFrame({"uscc": [str(i) for i in range(n)]}).write_parquet(path)
    this_validate = tmp_path / "runs" / "this" / "02_validate"
    found = _earlier_merges(EarlierResults.of(RunFolder(tmp_path / "runs" / "this"), "merge"), now, this_validate)
    assert [folder.parent.name for folder, _, _ in found] == ["the-big-file", "one-small-file", "two-files"]
    (tmp_path / "f.txt").write_text("甲", encoding="utf-8")
    record = file_record(tmp_path / "f.txt", None, tmp_path)
    assert still_recorded(tmp_path, [record]) and not still_recorded(tmp_path, [{**record, "sha256": "0" * 64}])
    (tmp_path / "f.txt").unlink()
    assert not still_recorded(tmp_path, [record]) and not still_recorded(tmp_path, [{**record, "path": "../f.txt"}])
