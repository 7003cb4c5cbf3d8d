"""Files hashed ahead or hashed already (transforms/storage/hashed_ahead.py): `sha256_file` takes a file's SHA-256
from there only while the file is what it was when it was hashed (a link or a rename of our own aside), and never
for a file whose bytes were written just before."""

import hashlib
import json
import os
from pathlib import Path

from jointdraw.transforms.storage import hashed_ahead as ahead
from jointdraw.transforms.storage.runfolder import file_record, link_file, sha256_file

FIRST, SECOND = b"uscc\n91440300MA5FXXXX1X\n", b"uscc\n91440300MA5FXXXX1X\n91440300MA5FYYYY2Y\n"


def test_a_file_hashed_ahead_is_not_read_again_until_it_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(ahead, "RACY_SECONDS", 0)  # the file was just written: trust it at once
    f = tmp_path / "objects.csv"
    f.write_bytes(FIRST)
    ahead.hash_ahead([f])
    assert ahead.remembered(f) == hashlib.sha256(FIRST).hexdigest()  # waits for the thread
    monkeypatch.setattr(ahead, "sha256_of", lambda path: "read again")
    assert sha256_file(f) == hashlib.sha256(FIRST).hexdigest()  # from the thread: not read again
    f.write_bytes(SECOND)  # a department's corrected file, written over the first
    assert ahead.remembered(f) is None and sha256_file(f) == "read again"
    f.unlink()
    assert ahead.remembered(f) is None  # gone: asked for, it is an error of the reader's own


def test_a_file_changed_just_before_it_was_hashed_is_hashed_again(tmp_path, monkeypatch):
    f = tmp_path / "objects.csv"
    f.write_bytes(FIRST)  # its change time: now, within RACY_SECONDS of the hashing
    ahead.hash_ahead([f])
    assert ahead.remembered(f) is None
    assert sha256_file(f) == hashlib.sha256(FIRST).hexdigest()


def _old(path, seconds=60):
    """`path` as a file whose bytes were written `seconds` ago (as a department's file, an earlier run's)."""
    written = path.stat().st_mtime_ns - seconds * 10**9
    os.utime(path, ns=(written, written))
    return path


def test_a_file_hashed_once_is_not_read_again_until_anything_changes_it(tmp_path, monkeypatch):
    f = tmp_path / "directory-000.parquet"
    f.write_bytes(FIRST)
    _old(f)
    assert sha256_file(f) == hashlib.sha256(FIRST).hexdigest()
    monkeypatch.setattr(ahead, "sha256_of", lambda path: "read again")
    assert sha256_file(f) == hashlib.sha256(FIRST).hexdigest()  # remembered
    before = f.stat()
    f.write_bytes(FIRST.replace(b"X", b"Z"))  # other bytes of the same size, the time set back (cp -p, rsync -t)
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert f.stat().st_mtime_ns == before.st_mtime_ns and sha256_file(f) == "read again"  # its change time told


def test_a_file_written_just_before_it_was_hashed_is_hashed_again(tmp_path, monkeypatch):
    f = tmp_path / "draws.parquet"
    f.write_bytes(FIRST)
    assert sha256_file(f) == hashlib.sha256(FIRST).hexdigest()
    monkeypatch.setattr(ahead, "sha256_of", lambda path: "read again")
    assert sha256_file(f) == "read again"


def test_a_file_a_stage_just_wrote_in_its_run_folder_is_remembered_and_still_hashed_again_once_changed(
    tmp_path, monkeypatch
):
    """The run folder is the pipeline's own: a stage's output, recorded as soon as it is written (file_record), is
    not read again by the next run that takes it; written again, it is."""
    f = tmp_path / "01_ingest" / "objects" / "AMR.parquet"
    f.parent.mkdir(parents=True)
    f.write_bytes(FIRST)
    record = file_record(f, 1, tmp_path)
    assert record["sha256"] == hashlib.sha256(FIRST).hexdigest() and record["path"] == "01_ingest/objects/AMR.parquet"
    monkeypatch.setattr(ahead, "sha256_of", lambda path: "read again")
    assert sha256_file(f) == hashlib.sha256(FIRST).hexdigest()  # remembered, though written just now
    f.write_bytes(SECOND)
    assert sha256_file(f) == "read again"


def test_a_link_or_a_rename_of_our_own_keeps_what_is_known_but_a_copy_is_hashed(tmp_path, monkeypatch):
    merged = tmp_path / "03_merge" / "directory-000.parquet"
    merged.parent.mkdir()
    merged.write_bytes(FIRST)
    digest = sha256_file(_old(merged))
    monkeypatch.setattr(ahead, "sha256_of", lambda path: "read again")
    committed = link_file(merged, tmp_path / "04_commit" / "directory-000.parquet")  # a link changes the change time
    assert sha256_file(committed) == digest and sha256_file(merged) == digest
    renamed = tmp_path / "04_commit" / "renamed.parquet"
    with ahead.same_bytes(committed, renamed):
        os.replace(committed, renamed)
    assert sha256_file(renamed) == digest
    os.chmod(renamed, 0o600)  # not ours: the change time tells
    assert sha256_file(renamed) == "read again"

    def no_links(source, target):
        raise OSError("links not allowed")

    monkeypatch.setattr(os, "link", no_links)  # another file system: copied, a new file
    assert sha256_file(link_file(merged, tmp_path / "copied.parquet")) == "read again"


def test_a_file_changed_between_its_hashing_and_our_link_is_hashed_again(tmp_path, monkeypatch):
    """Other bytes of the same size, the modification time set back (cp -p) after the file was hashed: its change
    time tells before the link, whose own new change time cannot hide it."""
    merged = tmp_path / "directory-000.parquet"
    merged.write_bytes(FIRST)
    sha256_file(_old(merged))
    before = merged.stat()
    merged.write_bytes(FIRST.replace(b"X", b"Z"))
    os.utime(merged, ns=(before.st_atime_ns, before.st_mtime_ns))
    monkeypatch.setattr(ahead, "sha256_of", lambda path: "read again")
    assert sha256_file(link_file(merged, tmp_path / "linked.parquet")) == "read again"


def test_every_name_of_a_file_hashed_already_is_known_through_our_links(tmp_path, monkeypatch):
    """An earlier run's file and this run's link of it are one inode: hashed through one name, a further link of
    the other name (reuse's verified links) needs no second read."""
    earlier = tmp_path / "earlier" / "accepted.parquet"
    earlier.parent.mkdir()
    earlier.write_bytes(FIRST)
    _old(earlier)
    ours = link_file(earlier, tmp_path / "01_ingest.parquet")  # not known yet: linked, then hashed through it
    digest = sha256_file(ours)
    monkeypatch.setattr(ahead, "sha256_of", lambda path: "read again")
    assert sha256_file(earlier) == digest  # the other name, unchanged since: the same inode
    assert sha256_file(link_file(earlier, tmp_path / "02_validate.parquet")) == digest
    other = tmp_path / "other.parquet"  # the same bytes in another file: read
    other.write_bytes(FIRST)
    assert sha256_file(_old(other)) == "read again"


def _a_new_command(monkeypatch):
    """What a new process knows: nothing yet."""
    for known in ("_KNOWN", "_NAMES", "_AHEAD"):
        monkeypatch.setattr(ahead, known, {})


def _stored(store) -> dict[str, str]:
    return {Path(f["path"]).name: f["sha256"] for f in json.loads(store.read_text(encoding="utf-8"))["files"]}


def test_what_a_command_hashed_is_known_to_the_next_one_while_the_file_is_unchanged(tmp_path, monkeypatch):
    """The output root's store (`keep_known`, `load_known`): a department file and an earlier run's file unchanged
    since are not read again by the next command; one written over (its time set back), touched or deleted is."""
    store = tmp_path / "known_digests.json"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    files = {name: inbox / name for name in ("AMR.csv", "EDU.csv", "HLT.csv", "URB.csv", "WAT.csv")}
    for name, f in files.items():
        f.write_bytes(SECOND if name == "URB.csv" else FIRST)
        _old(f)
    digest = {name: hashlib.sha256(f.read_bytes()).hexdigest() for name, f in files.items()}
    _a_new_command(monkeypatch)
    ahead.hash_ahead([files["AMR.csv"]])  # the first command: one file hashed ahead, the others as read
    assert [sha256_file(f) for f in files.values()] == list(digest.values())
    assert ahead.keep_known(store) and _stored(store) == digest
    # between the two commands: EDU's file written over with other bytes of its size and its time set back,
    # HLT's touched, WAT's deleted; AMR's and URB's untouched
    before = files["EDU.csv"].stat()
    files["EDU.csv"].write_bytes(FIRST.replace(b"X", b"Z"))
    os.utime(files["EDU.csv"], ns=(before.st_atime_ns, before.st_mtime_ns))
    _old(files["HLT.csv"], seconds=3600)  # touched: another time
    files["WAT.csv"].unlink()
    _a_new_command(monkeypatch)
    ahead.load_known(store)
    read = []
    monkeypatch.setattr(ahead, "sha256_of", lambda path: read.append(path.name) or f"read {path.name}")
    # only what is not known (or changed since) is hashed ahead: HLT's last, so that all are done when it is
    ahead.hash_ahead([files[name] for name in ("AMR.csv", "URB.csv", "EDU.csv", "HLT.csv")])
    assert sha256_file(files["AMR.csv"]) == digest["AMR.csv"] and sha256_file(files["URB.csv"]) == digest["URB.csv"]
    assert sha256_file(files["EDU.csv"]) == "read EDU.csv" and sha256_file(files["HLT.csv"]) == "read HLT.csv"
    assert sorted(read) == ["EDU.csv", "HLT.csv"]  # read once each, ahead (EDU's change time told)
    assert ahead.keep_known(store)
    assert _stored(store) == {
        "AMR.csv": digest["AMR.csv"],
        "URB.csv": digest["URB.csv"],
        "EDU.csv": "read EDU.csv",
        "HLT.csv": "read HLT.csv",
    }


def test_a_store_is_merged_with_what_another_command_kept_and_a_broken_one_is_as_none(tmp_path, monkeypatch):
    store = tmp_path / "known_digests.json"
    one, other = tmp_path / "one.csv", tmp_path / "other.csv"
    for f in (one, other):
        f.write_bytes(FIRST)
        _old(f)
    _a_new_command(monkeypatch)
    sha256_file(one)
    ahead.keep_known(store)
    _a_new_command(monkeypatch)  # another command of the same output root, at the same time: knew only `other`
    sha256_file(other)
    ahead.keep_known(store)
    assert set(_stored(store)) == {"one.csv", "other.csv"}
    store.write_text("{not json", encoding="utf-8")  # cut short, edited by hand: nothing is taken from it
    _a_new_command(monkeypatch)
    ahead.load_known(store)
    monkeypatch.setattr(ahead, "sha256_of", lambda path: "read again")
    assert sha256_file(one) == "read again"
