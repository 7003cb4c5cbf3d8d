"""Reading one department file, whatever its format and encoding, into a raw frame.

The raw frame is lossless: every column as text exactly as submitted (headers mapped to
SPEC names), plus `source_file` (relative to the inbox) and `source_line`: the row as a
spreadsheet numbers it (with the header in row 1, the first data row is line 2).

Exports as systems write them: the header row is found among the first rows (a merged title
such as "深圳市应急管理局 检查对象名录导出（2026年11月30日）" and blank rows above it are
skipped), blank rows and the note rows below the data (共 647 条记录; 导出人…导出时间…) are
skipped too, and every skipped row is listed with its spreadsheet row (`RawRegistry.skipped`);
a row with data is never skipped. Nothing is typed here; `normalise.py` does that.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from jointdraw.transforms.registry import COLUMNS, HEADER_ALIASES, KINDS, Kind

DEPARTMENT_FOLDER = re.compile(r"^[A-Z][A-Z0-9_]{0,15}$")
FORMATS = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".parquet": "parquet"}
SNIFF_BYTES = 1 << 20
HEAD_ROWS = 20  # the header row is looked for among this many rows at the top of a file
HEAD_BYTES = 1 << 18  # … read from at most this much of a CSV file
TAIL_ROWS = 20  # note rows are looked for among this many rows at the bottom
# A note row below the data, as export functions write them: a count, a total, who exported it and when.
NOTE_ROW = re.compile(
    r"^\s*(共\s*[\d,，]+\s*(条|行|户|家|个|项)|合计|总计|小计|导出|制表|打印|备注|说明|注\s*[:：]|数据来源|"
    r"数据截至|截至|截止|填报|审核|记录数|总数)"
)
NOTE_MAX_CELLS = 3  # a note fills a few cells at most; a row with more values is data


class RegistryFileError(Exception):
    """A file that cannot be read at all; the message says which file and why."""

    def __init__(self, file: str, reason: str):
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


@dataclass(frozen=True)
class RegistryFile:
    department: str
    kind: Kind
    path: Path
    relative: str  # as written in source_file: <DEPT>/<name>


@dataclass(frozen=True)
class Inbox:
    """What an inbox holds: the registry files found, and what was passed over (with why)."""

    files: list[RegistryFile]
    ignored: list[tuple[str, str]]  # (relative path, reason)
    problems: list[RegistryFileError]  # department-level problems (two files of one kind, ...)


def scan_inbox(inbox: Path, kinds: tuple[Kind, ...] = KINDS) -> Inbox:
    """Every `inbox/<DEPT>/<kind>.<ext>` file of these kinds (default: the registries), sorted
    by department and kind."""
    files, ignored, problems = [], [], []
    if not inbox.is_dir():
        raise FileNotFoundError(f"inbox {inbox} is not a folder of department folders")
    root = inbox.resolve()

    def leaves(path: Path) -> bool:  # a link whose target is outside the inbox (even /etc/passwd) is never read
        return path.is_symlink() and not path.resolve().is_relative_to(root)

    for dept_dir in sorted(p for p in inbox.iterdir() if p.is_dir()):
        if leaves(dept_dir):
            problems.append(
                RegistryFileError(
                    f"{dept_dir.name}/",
                    f"is a link to {dept_dir.resolve()}, outside the inbox: copy the department's files into the inbox",
                )
            )
            continue
        if not DEPARTMENT_FOLDER.match(
            dept_dir.name
        ):  # it names output folders: nothing outside the run may be written
            problems.append(
                RegistryFileError(
                    f"{dept_dir.name}/",
                    "a department folder is named by its department code "
                    "(A–Z and digits, e.g. AMR); this one is not read",
                )
            )
            continue
        by_kind: dict[str, list[Path]] = {}
        for path in sorted(dept_dir.iterdir()):
            rel = f"{dept_dir.name}/{path.name}"
            if leaves(path):
                problems.append(
                    RegistryFileError(
                        rel, f"is a link to {path.resolve()}, outside the inbox: copy the file into the inbox"
                    )
                )
                continue
            if path.is_dir() or path.name.startswith((".", "~$")):
                ignored.append((rel, "not a registry file"))
            elif path.stem not in kinds:
                ignored.append((rel, f"name is not one of {', '.join(k + '.*' for k in kinds)}"))
            elif path.suffix.lower() not in FORMATS:
                ignored.append((rel, f"unsupported format {path.suffix!r} (use .csv, .xlsx or .parquet)"))
            else:
                by_kind.setdefault(path.stem, []).append(path)
        for kind, paths in by_kind.items():
            if len(paths) > 1:
                names = ", ".join(p.name for p in paths)
                problems.append(RegistryFileError(f"{dept_dir.name}/", f"two {kind} files ({names}): submit one"))
                continue
            files.append(RegistryFile(dept_dir.name, kind, paths[0], f"{dept_dir.name}/{paths[0].name}"))  # type: ignore[arg-type]
    for p in sorted(inbox.iterdir()):
        if p.is_file():
            ignored.append((p.name, "files must be inside a department folder"))
    return Inbox(files, ignored, problems)


def _row_of(data: bytes, offset: int, encoding: str = "utf-8") -> int:
    """The spreadsheet row (CSV record, 1-based, the header's row 1 when it is the first) holding the
    byte at `offset`: a cell with line breaks inside quotes is one row, as a spreadsheet shows it and
    as `source_line` counts, not several text lines."""
    text = data[:offset].decode("utf-8" if encoding == "utf-8-sig" else encoding, errors="replace").lstrip("\ufeff")
    records = sum(1 for _ in csv.reader(io.StringIO(text)))
    return records + 1 if not text or text.endswith(("\n", "\r")) else max(records, 1)


def sniff_encoding(path: Path, name: str | None = None) -> str:
    """'utf-8-sig' (BOM), 'utf-8' or 'gb18030', decided on the first MiB; raises when none fits."""
    name = name or str(path)
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    final = len(head) < SNIFF_BYTES
    if head.startswith(codecs.BOM_UTF8):
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head[3:], final=final)
        except UnicodeDecodeError as e:
            raise RegistryFileError(
                name,
                f"starts with a UTF-8 byte-order mark but is not UTF-8 (row {_row_of(head, e.start + 3)}): "
                "GBK text saved with a UTF-8 mark? Save it again as UTF-8 (or as GBK without the mark)",
            ) from None
        return "utf-8-sig"
    if b"\x00" in head:
        raise RegistryFileError(name, "looks binary (NUL bytes), not a CSV text file")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=final)
        return "utf-8"
    except UnicodeDecodeError as utf8_error:
        try:
            codecs.getincrementaldecoder("gb18030")().decode(head, final=final)
            return "gb18030"
        except UnicodeDecodeError:
            row = _row_of(head, utf8_error.start)
            raise RegistryFileError(
                name,
                f"is neither UTF-8 nor GB18030/GBK text: row {row} is not UTF-8 and the file is not "
                "GBK either (mixed encodings? rows pasted from another file?)",
            ) from None


def _header_key(header: str) -> str:
    return unicodedata.normalize("NFKC", header).replace("\ufeff", "").strip().lower()


def spec_headers(headers: list[str], kind: Kind) -> dict[str, str]:
    """Submitted header → SPEC name, for the headers that map (English or Chinese)."""
    known = set(COLUMNS[kind])
    aliases = {_header_key(k): v for k, v in HEADER_ALIASES[kind].items()}
    out = {}
    for h in headers:
        key = _header_key(h)
        name = key if key in known else aliases.get(key)
        if name:
            out[h] = name
    return out


def header_row(rows: list[list[str | None]], kind: Kind) -> int:
    """The index of the header among a file's first rows: the row naming the most columns of the
    kind (the first of equals); 0 when no row names any (the file's own first row)."""
    counts = [len(set(spec_headers([c for c in row if c], kind).values())) for row in rows[:HEAD_ROWS]]
    best = max(counts, default=0)
    return counts.index(best) if best else 0


def _csv_head(path: Path, encoding: str) -> tuple[list[list[str]], list[int]]:
    """The first rows of a CSV file as cells, and the text line each row starts on (1-based)."""
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=False)
    lines = text.splitlines(keepends=True)
    if len(head) == HEAD_BYTES and lines:
        lines = lines[:-1]  # the last line may be cut short
    reader = csv.reader(lines)
    rows, starts, line = [], [], 1
    for row in itertools.islice(reader, HEAD_ROWS):
        rows.append(row)
        starts.append(line)
        line = reader.line_num + 1
    return rows, starts


@dataclass(frozen=True)
class _Sheet:
    """A file's table from its header row on, and what stood above the header: its header names,
    and its rows (text) in batches of at most n rows, in file order."""

    columns: list[str]
    header_line: int  # 1-based, as the spreadsheet numbers rows
    above: list[list[str | None]]  # the rows above the header (titles, blank rows)
    batches: Callable[[int], Iterator[pl.DataFrame]]

    @classmethod
    def whole(cls, frame: pl.DataFrame, header_line: int, above: list[list[str | None]]) -> _Sheet:
        """A sheet read whole (a workbook, GBK text): its batches are slices of it."""
        return cls(
            frame.columns, header_line, above, lambda n: iter(frame.iter_slices(n)) if frame.height else iter([frame])
        )


def _read_csv(path: Path, rel: str, kind: Kind) -> tuple[_Sheet, str]:
    """The CSV from its header row on, and its encoding. UTF-8 is read in batches as it goes (a city's
    export of millions of rows is never whole in memory); GBK is decoded whole (polars reads UTF-8 only)."""
    encoding = sniff_encoding(path, rel)
    rows, starts = _csv_head(path, encoding)
    header = header_row(rows, kind)
    skip = starts[header] - 1 if rows else 0  # text lines above the header
    with _csv_errors(path, rel, encoding):
        if encoding == "gb18030":  # polars cannot decode GBK itself: decode strictly, hand it UTF-8
            text = path.read_bytes().decode("gb18030")
            df = pl.read_csv(io.BytesIO(text.encode("utf-8")), infer_schema=False, skip_rows=skip)
            return _Sheet.whole(df, header + 1, rows[:header]), encoding
        scan = pl.scan_csv(path, infer_schema=False, encoding="utf8", skip_rows=skip)
        columns = scan.collect_schema().names()

    def batches(n: int) -> Iterator[pl.DataFrame]:
        with _csv_errors(path, rel, encoding):
            yield from scan.collect_batches(chunk_size=n)

    return _Sheet(columns, header + 1, rows[:header], batches), encoding


@contextmanager
def _csv_errors(path: Path, rel: str, encoding: str) -> Iterator[None]:
    """What polars (or the GBK decoder) says of a CSV it cannot read, as a RegistryFileError naming the row."""
    try:
        yield
    except UnicodeDecodeError as e:
        row = _row_of(path.read_bytes(), e.start, encoding)
        raise RegistryFileError(
            rel, f"is not valid {encoding} text at row {row} (mixed encodings? rows pasted from another file?)"
        ) from None
    except pl.exceptions.NoDataError:
        raise RegistryFileError(rel, "is empty (no header row)") from None
    except pl.exceptions.ComputeError as e:
        msg = str(e).splitlines()[0]
        if "invalid utf-8" in msg.lower():
            data = path.read_bytes()
            try:
                data.decode("utf-8-sig" if encoding == "utf-8-sig" else "utf-8")
                row = "?"
            except UnicodeDecodeError as e:
                row = str(_row_of(data, e.start))
            raise RegistryFileError(
                rel, f"is not valid UTF-8 at row {row} (mixed encodings? rows pasted from another file?)"
            ) from None
        raise RegistryFileError(rel, f"cannot be parsed as CSV: {msg}") from None


def _read_xlsx(path: Path, rel: str, kind: Kind) -> _Sheet:
    """The first sheet from its header row on (every cell as text).

    The sheet is read whole as a grid (row i is spreadsheet row i + 1, leading blank rows kept),
    so a title above the header is found and every row keeps its spreadsheet number."""
    import fastexcel

    try:
        book = fastexcel.read_excel(path)
        # loaded eagerly through pyarrow: the same frame in less time (a 125,785-row sheet 1.1-1.3 s, not 1.4-1.5)
        grid = pl.from_arrow(book.load_sheet(0, header_row=None, skip_rows=0, dtypes="string", eager=True))
    except Exception as e:  # fastexcel raises its own error types for corrupt workbooks
        reason = str(e).splitlines()[0]
        raise RegistryFileError(rel, f"cannot be read as an XLSX workbook: {reason}") from None
    if grid.height == 0 or grid.width == 0:  # the first sheet is empty: say where the data is
        try:
            sheets = [name for name in book.sheet_names if book.load_sheet(name, header_row=None, n_rows=2).height]
        except Exception:  # noqa: BLE001 - only to improve the message
            sheets = []
        if sheets:
            raise RegistryFileError(
                rel, f"its first sheet is empty; the data is on sheet {sheets[0]!r}: move that sheet first"
            )
        raise RegistryFileError(rel, "has no data on any sheet")
    header = header_row([list(r) for r in grid.head(HEAD_ROWS).iter_rows()], kind)
    names = [str(v).strip() if v is not None else "" for v in grid.row(header)]
    seen: dict[str, int] = {}
    columns = []
    for i, name in enumerate(names):  # blank headers get a placeholder name, repeated ones polars' suffix
        name = name or f"__UNNAMED__{i}"
        columns.append(name if name not in seen else f"{name}_duplicated_{seen[name]}")
        seen[name] = seen.get(name, 0) + 1
    above = [list(r) for r in grid.head(header).iter_rows()]
    data = grid.slice(header + 1).rename(dict(zip(grid.columns, columns, strict=True)))
    return _Sheet.whole(data, header + 1, above)


def _header_problems(columns: list[str], rel: str) -> None:
    """A header the reader cannot trust: one column that looks like another delimiter, a header named twice."""
    if len(columns) == 1 and (sep := next((c for c in (";", "\t", "|") if c in columns[0]), None)):
        raise RegistryFileError(
            rel,
            f"has a single column whose header is separated by {sep!r}, not by commas: save it as comma-separated CSV",
        )
    twice = sorted({c.split("_duplicated_")[0] for c in columns if "_duplicated_" in c})
    if twice:
        raise RegistryFileError(rel, f"names these headers more than once: {', '.join(twice)}: keep one of each")


def _unnamed_with_data(batch: pl.DataFrame, rel: str) -> None:
    """A column with data but no header (merged header cells): the file cannot be read as meant."""
    for i, c in enumerate(batch.columns, start=1):
        if (c == "" or c.startswith("__UNNAMED__")) and batch[c].drop_nulls().len():
            raise RegistryFileError(
                rel,
                f"column {i} holds data but has no header (merged or blank header cells?): "
                "give every column its own header in the first row",
            )


def _read_parquet(path: Path, rel: str) -> _Sheet:
    """A Parquet table (every row data, the header its column names), read in batches as text."""
    try:
        scan = pl.scan_parquet(path)
        schema = scan.collect_schema()
    except Exception as e:  # polars/arrow raise several error types for corrupt files
        raise RegistryFileError(rel, f"cannot be read as Parquet: {str(e).splitlines()[0]}") from None
    text = scan.select(
        (
            pl.col(c).cast(pl.List(pl.String)).list.join(";") if isinstance(t, pl.List) else pl.col(c).cast(pl.String)
        ).alias(c)
        for c, t in schema.items()
    )

    def batches(n: int) -> Iterator[pl.DataFrame]:
        try:
            yield from text.collect_batches(chunk_size=n)
        except Exception as e:  # noqa: BLE001 - a corrupt page is found while reading
            raise RegistryFileError(rel, f"cannot be read as Parquet: {str(e).splitlines()[0]}") from None

    return _Sheet(schema.names(), 1, [], batches)


@dataclass(frozen=True)
class SkippedRow:
    """A row of the file that holds no data: a title above the header, a blank row, a note below the data."""

    line: int  # as the spreadsheet numbers it
    why: str  # title | blank | note
    text: str  # what it says (its cells joined, at most 120 characters)


@dataclass(frozen=True)
class RawRegistry:
    """A file's rows as text, with headers mapped; what was noticed while reading it."""

    frame: pl.DataFrame
    encoding: str
    unmapped_headers: list[str]
    header_line: int = 1  # the header's spreadsheet row
    skipped: tuple[SkippedRow, ...] = ()


def _cells_text(row: tuple) -> str:
    return " | ".join(str(v).strip() for v in row if v is not None and str(v).strip())[:120]


def _is_note(row: tuple) -> bool:
    values = [str(v).strip() for v in row if v is not None and str(v).strip()]
    return 0 < len(values) <= NOTE_MAX_CELLS and bool(NOTE_ROW.match(values[0]))


def _blank_rows(df: pl.DataFrame, cells: list[str]) -> pl.Series:
    """True where no cell of the row holds anything but white space. Nearly every row's first
    non-null cell has text, which settles it; only the others are looked at cell by cell."""
    if df.is_empty():
        return pl.Series(dtype=pl.Boolean)
    has_text = [pl.col(c).str.contains(r"\S").fill_null(False) for c in cells]
    settled = df.select(pl.coalesce(cells).str.contains(r"\S").fill_null(False)).to_series()
    if settled.all():
        return ~settled
    unsettled = np.flatnonzero(~settled.to_numpy())
    blank = ~df[unsettled].select(pl.any_horizontal(has_text)).to_series()
    return pl.Series(np.zeros(df.height, dtype=bool)).scatter(unsettled, blank)


def drop_rows_without_data(
    df: pl.DataFrame, first_line: int, at_end: bool = True
) -> tuple[pl.DataFrame, list[SkippedRow]]:
    """`df` with `source_line` (row i is spreadsheet row first_line + i), less its blank rows and,
    when `df` ends the file (`at_end`), the note rows after the last data row; the rows dropped, in order."""
    cells = [c for c in df.columns]
    df = df.with_columns(source_line=pl.int_range(pl.len(), dtype=pl.Int64) + first_line)
    if not cells or df.is_empty():
        return df, []
    blank = _blank_rows(df, cells)
    notes: list[int] = []  # positions of note rows, counted from the end, up to the last data row
    for i in range(df.height - 1, max(df.height - 1 - TAIL_ROWS, -1), -1) if at_end else ():
        if blank[i]:
            continue
        if not _is_note(df.row(i)[: len(cells)]):
            break
        notes.append(i)
    drop = blank.to_numpy().copy()
    drop[notes] = True
    if not drop.any():
        return df, []
    dropped = df.filter(pl.Series(drop))
    skipped = [
        SkippedRow(line, "blank" if not text else "note", text)
        for line, text in zip(
            dropped["source_line"], (_cells_text(r) for r in dropped.select(cells).iter_rows()), strict=True
        )
    ]
    return df.filter(~pl.Series(drop)), skipped


BATCH_ROWS = 500_000  # rows read, normalised and written at a time: memory follows a batch, not a file


@dataclass(frozen=True)
class RegistryStream:
    """A department file opened: what its head says (encoding, header, mapping, titles above the
    header) and, from `batches`, its data rows as text under SPEC names, in file order."""

    file: RegistryFile
    sheet: _Sheet
    encoding: str
    mapping: dict[str, str]  # submitted header → SPEC name
    unmapped_headers: list[str]
    titles: tuple[SkippedRow, ...]
    is_table: bool  # Parquet: every row is data (no blank rows or notes to look for)

    def batches(self, rows: int = BATCH_ROWS) -> Iterator[tuple[pl.DataFrame, list[SkippedRow]]]:
        """The data rows, at most `rows` at a time (with source_file and source_line), and the rows
        without data skipped among them. The last TAIL_ROWS rows read are held back until the next
        batch comes, so the notes below the data are found at the file's end, whatever the batches."""
        first_line = self.sheet.header_line + 1
        held: pl.DataFrame | None = None
        for batch in self.sheet.batches(rows):
            _unnamed_with_data(batch, self.file.relative)
            if self.is_table:
                yield (
                    self._mapped(batch.with_columns(source_line=pl.int_range(pl.len(), dtype=pl.Int64) + first_line)),
                    [],
                )
                first_line += batch.height
                continue
            rows_now = batch if held is None else pl.concat([held, batch])
            ready, held = rows_now.head(-TAIL_ROWS), rows_now.tail(TAIL_ROWS)
            if ready.height:
                kept, skipped = drop_rows_without_data(ready, first_line, at_end=False)
                first_line += ready.height
                yield self._mapped(kept), skipped
        if held is not None or first_line == self.sheet.header_line + 1:
            last = held if held is not None else pl.DataFrame(schema={c: pl.String for c in self.sheet.columns})
            kept, skipped = (
                drop_rows_without_data(last, first_line, at_end=True)
                if not self.is_table
                else (last.with_columns(source_line=pl.int_range(pl.len(), dtype=pl.Int64) + first_line), [])
            )
            yield self._mapped(kept), skipped

    def _mapped(self, df: pl.DataFrame) -> pl.DataFrame:
        return (
            df.select(*[pl.col(h).alias(n) for h, n in self.mapping.items()], "source_line")
            .with_columns(source_file=pl.lit(self.file.relative))
            .select(*self.mapping.values(), "source_file", "source_line")
        )


def open_registry(file: RegistryFile) -> RegistryStream:
    """Opens a department file: its format, encoding, header row and the SPEC names of its headers,
    checked; its rows are read by `RegistryStream.batches`."""
    suffix = FORMATS[file.path.suffix.lower()]
    if suffix == "csv":
        sheet, encoding = _read_csv(file.path, file.relative, file.kind)
    elif suffix == "xlsx":
        sheet, encoding = _read_xlsx(file.path, file.relative, file.kind), "xlsx"
    else:
        sheet, encoding = _read_parquet(file.path, file.relative), "parquet"
    columns = sheet.columns
    _header_problems(columns, file.relative)
    mapping = spec_headers(columns, file.kind)
    if not mapping:
        shown = ", ".join(columns[:5]) + (f" … ({len(columns)} columns)" if len(columns) > 5 else "")
        raise RegistryFileError(
            file.relative,
            f"no header names a column of {file.kind} (headers: {shown}); see the README for the "
            "accepted English and Chinese headers",
        )
    targets = list(mapping.values())
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        cols = "; ".join(f"{t} ← {', '.join(h for h, v in mapping.items() if v == t)}" for t in dupes)
        raise RegistryFileError(file.relative, f"several headers name the same column ({cols}): keep one")
    titles = tuple(
        SkippedRow(i + 1, "title" if _cells_text(tuple(r)) else "blank", _cells_text(tuple(r)))
        for i, r in enumerate(sheet.above)
    )
    unmapped = [h for h in columns if h not in mapping]
    return RegistryStream(file, sheet, encoding, mapping, unmapped, titles, is_table=suffix == "parquet")


def read_registry(file: RegistryFile, batch_rows: int = BATCH_ROWS) -> RawRegistry:
    """The file's data rows as text under SPEC column names, with source_file and source_line, whole."""
    stream = open_registry(file)
    frames, skipped = [], list(stream.titles)
    for frame, dropped in stream.batches(batch_rows):
        frames.append(frame)
        skipped += dropped
    return RawRegistry(
        pl.concat(frames), stream.encoding, stream.unmapped_headers, stream.sheet.header_line, tuple(skipped)
    )
