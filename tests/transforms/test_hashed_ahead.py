"""Files hashed ahead (transforms/storage/hashed_ahead.py): `sha256_file` takes a file's SHA-256 from there only
while the file is what it was when it was hashed, and never for a file changed just before."""

import hashlib

from jointdraw.transforms.storage import hashed_ahead as ahead
from jointdraw.transforms.storage import runfolder
from jointdraw.transforms.storage.runfolder import sha256_file

FIRST, SECOND = b"uscc\n91440300MA5FXXXX1X\n", b"uscc\n91440300MA5FXXXX1X\n91440300MA5FYYYY2Y\n"


def test_a_file_hashed_ahead_is_not_read_again_until_it_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(ahead, "RACY_SECONDS", 0)  # the file was just written: trust it at once
    f = tmp_path / "objects.csv"
    f.write_bytes(FIRST)
    ahead.hash_ahead([f])
    monkeypatch.setattr(runfolder, "sha256_of", lambda path: "read again")
    assert sha256_file(f) == hashlib.sha256(FIRST).hexdigest()  # from the thread: not read again
    f.write_bytes(SECOND)  # a department's corrected file, written over the first
    assert ahead.hashed_ahead(f) is None and sha256_file(f) == "read again"
    f.unlink()
    assert ahead.hashed_ahead(f) is None  # gone: asked for, it is an error of the reader's own


def test_a_file_changed_just_before_it_was_hashed_is_hashed_again(tmp_path, monkeypatch):
    f = tmp_path / "objects.csv"
    f.write_bytes(FIRST)  # its change time: now, within RACY_SECONDS of the hashing
    ahead.hash_ahead([f])
    assert ahead.hashed_ahead(f) is None
    assert sha256_file(f) == hashlib.sha256(FIRST).hexdigest()
