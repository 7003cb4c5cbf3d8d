"""The directory's canonical lines are hashed batch by batch (made on two threads, hashed in order): the
digest is the SHA-256 of all the lines one after the other, whatever the batch size."""

import hashlib

import polars as pl
import pytest

from jointdraw.transforms import commitment


@pytest.mark.parametrize("batch", [1, 3, 7, 100])
def test_the_lines_digest_does_not_depend_on_the_batches(monkeypatch, batch):
    df = pl.DataFrame(
        {
            "entity_key": [f"9144030{i:011d}" for i in range(20)],
            "status": ["active", None] * 10,
            "tags": [["a", "b"], [], None, ["深圳"]] * 5,
            "branch": [True, False, None, True] * 5,
        }
    )
    text = "".join(
        f"{k}\t{s or ''}\t{';'.join(t) if t else ''}\t{'' if b is None else str(b).lower()}\n"
        for k, s, t, b in df.iter_rows()
    )
    monkeypatch.setattr(commitment, "BATCH", batch)
    assert commitment._lines_sha256(df, df.columns) == hashlib.sha256(text.encode()).hexdigest()
