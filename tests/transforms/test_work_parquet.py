"""Ingest's working Parquet writer (transforms/storage/runfolder.py `work_parquet_appender`)."""

import polars as pl
import pyarrow.parquet as pq
import pytest

from jointdraw.transforms.storage.runfolder import work_parquet_appender


def _dictionary_encoded(path) -> set[str]:
    row_group = pq.ParquetFile(path).metadata.row_group(0)
    columns = (row_group.column(i) for i in range(row_group.num_columns))
    return {c.path_in_schema for c in columns if "RLE_DICTIONARY" in c.encodings}


def test_the_named_columns_are_dictionary_encoded_lists_by_their_values(tmp_path):
    frame = pl.DataFrame({"uscc": ["A", "B"], "status": ["active", "active"], "tags": [["x"], []]})
    with work_parquet_appender(tmp_path / "typed.parquet", ["status", "tags"]) as append:
        append(frame)
        append(frame)
    assert _dictionary_encoded(tmp_path / "typed.parquet") == {"status", "tags.list.element"}
    assert pl.read_parquet(tmp_path / "typed.parquet").equals(pl.concat([frame, frame]))
    with work_parquet_appender(tmp_path / "raw.parquet") as append:
        append(frame)
    assert _dictionary_encoded(tmp_path / "raw.parquet") == set()


def test_a_column_name_the_frame_lacks_is_refused(tmp_path):
    with pytest.raises(KeyError), work_parquet_appender(tmp_path / "typed.parquet", ["stauts"]) as append:
        append(pl.DataFrame({"status": ["active"]}))
    assert not (tmp_path / "typed.parquet").exists()
