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


@pytest.mark.parametrize("batch", [2, 1000])
def test_a_sorted_directory_is_read_a_batch_at_a_time_and_an_unsorted_one_is_sorted_first(tmp_path, monkeypatch, batch):
    fields = commitment.DIRECTORY_FIELDS
    n = 30
    directory = pl.DataFrame(
        {
            "entity_key": [f"9144030{i:011d}" for i in range(n)],
            "uscc": [f"9144030{i:011d}" for i in range(n)],
            "status": ["active"] * n,
            "credit_risk": ["A", "B", "C"] * 10,
            "industry_code": ["F5211"] * n,
            "entity_type": ["enterprise"] * n,
            "district_code": ["440303"] * n,
            "tags": [["a"], [], None] * 10,
            "departments": [["AMR", "FIR"]] * n,
            "registered_type_code": ["1100"] * n,
            "foreign_invested": [False] * n,
            "branch": [None, True, False] * 10,
            "name": [f"公司{i}" for i in range(n)],  # not a committed field
        }
    )
    expected = commitment._lines_sha256(directory, fields)
    monkeypatch.setattr(commitment, "BATCH", batch)
    for name, frame in (("sorted", directory), ("shuffled", directory.sample(fraction=1.0, shuffle=True, seed=3))):
        path = tmp_path / f"{name}.parquet"
        frame.write_parquet(path, row_group_size=4)
        assert commitment.directory_sha256(path) == expected, name
