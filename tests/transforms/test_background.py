"""The publish stage's background writers (transforms/storage/background.py): what they write is
there when the block ends, an error of any writer reaches the caller, and a worker stops with its parent."""

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from jointdraw.transforms.storage.background import BackgroundWriters, warm_up, write_ahead, written_ahead
from jointdraw.transforms.storage.runfolder import copy_parquet_without, write_parquet


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _fail(path: Path) -> None:
    raise OSError(28, "No space left on device", str(path))


def _chatty_write(path: Path) -> None:
    print("a writer that prints")  # must not garble the worker's answers
    path.write_text("乙", encoding="utf-8")


def test_the_workers_have_written_everything_when_the_block_ends(tmp_path):
    source = write_parquet(
        pl.DataFrame({"entity_key": ["E1", "E2"], "operator_name": ["张三", None], "phone": ["1", "2"]}),
        tmp_path / "directory.parquet",
    )
    with BackgroundWriters() as writers:
        writers.submit(_write_text, tmp_path / "a.txt", "甲")
        writers.submit(copy_parquet_without, source, tmp_path / "public.parquet", ("operator_name", "phone"))
        writers.submit(_chatty_write, tmp_path / "b.txt")
        writers.submit(_write_text, tmp_path / "c.txt", "丙")  # a worker serves one writer after another
    assert [(tmp_path / n).read_text(encoding="utf-8") for n in ("a.txt", "b.txt", "c.txt")] == ["甲", "乙", "丙"]
    assert pl.read_parquet(tmp_path / "public.parquet").to_dict(as_series=False) == {"entity_key": ["E1", "E2"]}


def test_a_worker_started_in_another_folder_runs_what_this_process_imports(tmp_path, monkeypatch):
    """A worker imports what its parent can, whatever folder the parent was in when it started it (a warm worker
    serves later writers): here a writer of this test module, the worker started from a folder without it."""
    from jointdraw.transforms.storage import background

    while (warm := background._take_warm()) is not None:  # started by earlier tests: not what this one checks
        warm.close()
    monkeypatch.chdir(tmp_path)
    with BackgroundWriters(workers=1) as writers:
        writers.submit(_write_text, tmp_path / "a.txt", "甲")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "甲"


def _what_is_loaded(path: Path) -> None:
    path.write_text(json.dumps({"pid": os.getpid(), "xlsxwriter": "xlsxwriter" in sys.modules}), encoding="utf-8")


def _timed(path: Path) -> None:
    started = time.time()
    time.sleep(0.5)
    path.write_text(json.dumps({"pid": os.getpid(), "started": started, "finished": time.time()}), encoding="utf-8")


def test_workers_warmed_up_ahead_have_loaded_the_writers_modules_before_their_first_writer(tmp_path):
    """The plan flow warms the workers up while assign runs on one core: publish's first workbook then pays
    no import."""
    warm_up()
    with BackgroundWriters() as writers:
        writers.submit(_what_is_loaded, tmp_path / "first.json")
        writers.submit(_what_is_loaded, tmp_path / "second.json")
    found = [json.loads((tmp_path / f"{n}.json").read_text(encoding="utf-8")) for n in ("first", "second")]
    assert all(f["xlsxwriter"] for f in found) and all(f["pid"] != os.getpid() for f in found), found


def test_the_workers_of_a_block_that_ended_well_serve_the_next_block_and_a_failed_blocks_stop(tmp_path):
    """A process that runs several plans starts no fresh workers for each: a block's workers wait warm for the
    next one, unless the block failed (a writer under way may have been stopped half-way: that worker ends)."""
    with BackgroundWriters(workers=1) as writers:
        writers.submit(_what_is_loaded, tmp_path / "first.json")
    with BackgroundWriters(workers=1) as writers:
        writers.submit(_what_is_loaded, tmp_path / "second.json")
    first, second = (json.loads((tmp_path / f"{n}.json").read_text(encoding="utf-8")) for n in ("first", "second"))
    assert first["pid"] == second["pid"] != os.getpid()
    with pytest.raises(OSError, match="No space left"), BackgroundWriters(workers=1) as writers:
        writers.submit(_fail, tmp_path / "failed.txt")  # the warm worker of the blocks above takes it
    assert not os.path.exists(f"/proc/{second['pid']}"), "the failed block's worker ended (and was waited for)"
    with BackgroundWriters(workers=1) as writers:
        writers.submit(_what_is_loaded, tmp_path / "third.json")
    assert json.loads((tmp_path / "third.json").read_text(encoding="utf-8"))["pid"] != second["pid"]


def test_a_file_written_ahead_is_there_when_asked_for_and_its_worker_serves_the_next_writers(tmp_path):
    """A stage starts a later stage's file (publish's audit directory while assign runs); the later stage waits
    for it, or writes it itself when its writer failed or it was never asked for."""
    write_ahead(tmp_path / "failed.txt", _fail, tmp_path / "failed.txt")  # its worker stopped: the next, another
    write_ahead(tmp_path / "ahead.json", _what_is_loaded, tmp_path / "ahead.json")
    assert written_ahead(tmp_path / "ahead.json") and not written_ahead(tmp_path / "failed.txt")
    assert not written_ahead(tmp_path / "ahead.json"), "taken once"
    assert not written_ahead(tmp_path / "never.txt")
    ahead = json.loads((tmp_path / "ahead.json").read_text(encoding="utf-8"))
    with BackgroundWriters(workers=1) as writers:  # the worker that wrote it, warm again
        writers.submit(_what_is_loaded, tmp_path / "next.json")
    assert json.loads((tmp_path / "next.json").read_text(encoding="utf-8"))["pid"] == ahead["pid"] != os.getpid()


def test_publish_takes_a_table_written_ahead_with_its_workbook_or_writes_it_when_its_writer_failed(tmp_path):
    """The draws' tables written ahead (flows/publish.py `write_ahead_for_publish`) are moved into the bundle, the
    workbook beside the CSV; a table whose writer failed is written by publish itself (draw_bundle `_take_ahead`)."""
    from jointdraw.transforms.documents.draw_bundle import _take_ahead
    from jointdraw.transforms.storage.xlsxout import write_people_tables

    draws = pl.DataFrame({"uscc": ["91440300MA5DC6QX5A"], "task_id": ["T1"]})
    (tmp_path / "ahead").mkdir()
    (tmp_path / "bundle").mkdir()
    write_ahead(
        tmp_path / "ahead" / "draws.csv", write_people_tables, draws, tmp_path / "ahead" / "draws.csv", {}, "表"
    )
    write_ahead(tmp_path / "ahead" / "failed.csv", _fail, tmp_path / "ahead" / "failed.csv")
    written_here = []

    def write_here(path: Path) -> None:
        written_here.append(path.name)
        write_people_tables(draws, path, {}, "表")

    _take_ahead(tmp_path / "ahead" / "draws.csv", tmp_path / "bundle" / "draws.csv", write_here, ".xlsx")
    _take_ahead(tmp_path / "ahead" / "failed.csv", tmp_path / "bundle" / "failed.csv", write_here, ".xlsx")
    assert written_here == ["failed.csv"] and not list((tmp_path / "ahead").iterdir())
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == [
        "draws.csv", "draws.xlsx", "failed.csv", "failed.xlsx"
    ]  # fmt: skip
    assert (tmp_path / "bundle" / "draws.xlsx").read_bytes() == (tmp_path / "bundle" / "failed.xlsx").read_bytes()


def test_a_writers_error_reaches_the_caller_with_its_type(tmp_path):
    # an OSError stays an OSError (the publish stage turns a full disk into a message that says so)
    with pytest.raises(OSError, match="No space left"), BackgroundWriters() as writers:
        writers.submit(_write_text, tmp_path / "a.txt", "ok")
        writers.submit(_fail, tmp_path / "b.txt")
    with pytest.raises(RuntimeError, match="the caller's own"), BackgroundWriters() as writers:
        writers.submit(_write_text, tmp_path / "c.txt", "ok")
        raise RuntimeError("the caller's own error goes on")


def test_the_directory_without_personal_columns_is_the_same_bytes_as_dropping_them(tmp_path):
    # several row groups (chunks), lists, nulls: reading fewer columns must not change what is written
    df = pl.concat(
        [
            pl.DataFrame(
                {
                    "entity_key": [f"E{i}-{j}" for j in range(50)],
                    "operator_name": ["李四", None] * 25,
                    "departments": [["AMR", "ENV"], None] * 25,
                    "phone": ["13800000000"] * 50,
                    "n": list(range(50)),
                }
            )
            for i in range(3)
        ],
        rechunk=False,
    )
    source = write_parquet(df, tmp_path / "directory.parquet")
    dropped = write_parquet(pl.read_parquet(source).drop("operator_name", "phone"), tmp_path / "dropped.parquet")
    copied = copy_parquet_without(source, tmp_path / "copied.parquet", ("operator_name", "phone", "absent"))
    assert hashlib.sha256(copied.read_bytes()).digest() == hashlib.sha256(dropped.read_bytes()).digest()


def _slow_write(path: Path) -> None:
    import time

    time.sleep(3)
    path.write_text("written after its parent died", encoding="utf-8")


PARENT = """
import sys
from pathlib import Path
from jointdraw.transforms.storage.background import BackgroundWriters, warm_up, write_ahead, written_ahead
from tests.transforms.test_background import _slow_write
import time
writers = BackgroundWriters()
writers.submit(_slow_write, Path(sys.argv[1]))
while not writers._workers:
    time.sleep(0.01)
print(next(iter(writers._workers.values()))._process.pid, flush=True)
writers.wait()
"""


def test_a_writer_process_stops_when_its_parent_is_killed(tmp_path):
    # a killed publish leaves no process writing on into its staging folder
    import os
    import signal
    import subprocess
    import sys
    import time

    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "late.txt")], stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and os.path.exists(f"/proc/{child}") and "Z" not in _state(child):
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{child}") or "Z" in _state(child)
    time.sleep(3.5)
    assert not (tmp_path / "late.txt").exists()


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().split(") ")[1][0]
    except OSError:
        return "gone"


def test_files_written_ahead_in_one_lane_are_written_one_after_another_in_the_order_asked(tmp_path):
    """One worker at a time writes a lane's files ahead (the stage that asked keeps a core of its own), in the order
    asked; another lane's files are written meanwhile."""
    for n in range(3):
        write_ahead(tmp_path / f"{n}.json", _timed, tmp_path / f"{n}.json")
    write_ahead(tmp_path / "other.json", _timed, tmp_path / "other.json", lane="other")
    assert all(written_ahead(tmp_path / f"{n}.json") for n in range(3)) and written_ahead(tmp_path / "other.json")
    found = [json.loads((tmp_path / f"{n}.json").read_text(encoding="utf-8")) for n in range(3)]
    assert len({f["pid"] for f in found}) == 1  # at once, they would have needed a worker each
    assert all(a["finished"] <= b["started"] for a, b in zip(found, found[1:], strict=False))
    other = json.loads((tmp_path / "other.json").read_text(encoding="utf-8"))
    assert other["pid"] != found[0]["pid"] and other["started"] < found[-1]["finished"]  # side by side
