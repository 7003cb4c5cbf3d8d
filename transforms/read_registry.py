"""Reading one department file, whatever its format and encoding, into a raw frame.

The raw frame is lossless: every column as text exactly as submitted (headers mapped to
SPEC names), plus `source_file` (relative to the inbox) and `source_line` (the header is
line 1, the first data row line 2, as a spreadsheet numbers rows). Nothing is typed or
dropped here; `normalise.py` does that.
"""

from __future__ import annotations

import codecs
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from transforms.registry import COLUMNS, HEADER_ALIASES, KINDS, Kind

DEPARTMENT_FOLDER = re.compile(r"^[A-Z][A-Z0-9_]{0,15}$")
FORMATS = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".parquet": "parquet"}
SNIFF_BYTES = 1 << 20


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
    for dept_dir in sorted(p for p in inbox.iterdir() if p.is_dir()):
        if not DEPARTMENT_FOLDER.match(dept_dir.name):  # it names output folders: nothing outside the run may be written
            problems.append(RegistryFileError(f"{dept_dir.name}/", "a department folder is named by its department code "
                                                                    "(A–Z and digits, e.g. AMR); this one is not read"))
            continue
        by_kind: dict[str, list[Path]] = {}
        for path in sorted(dept_dir.iterdir()):
            rel = f"{dept_dir.name}/{path.name}"
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


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


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
            raise RegistryFileError(name, f"starts with a UTF-8 byte-order mark but is not UTF-8 (line {_line_of(head, e.start + 3)}): "
                                          "GBK text saved with a UTF-8 mark? Save it again as UTF-8 (or as GBK without the mark)") from None
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
            line = _line_of(head, utf8_error.start)
            raise RegistryFileError(name, f"is neither UTF-8 nor GB18030/GBK text: line {line} is not UTF-8 and the file is not "
                                          "GBK either (mixed encodings? rows pasted from another file?)") from None


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


def _read_csv(path: Path, rel: str) -> tuple[pl.DataFrame, str]:
    encoding = sniff_encoding(path, rel)
    try:
        if encoding == "gb18030":  # polars cannot decode GBK itself: decode strictly, hand it UTF-8
            text = path.read_bytes().decode("gb18030")
            return pl.read_csv(io.BytesIO(text.encode("utf-8")), infer_schema=False), encoding
        return pl.read_csv(path, infer_schema=False, encoding="utf8"), encoding
    except UnicodeDecodeError as e:
        line = _line_of(path.read_bytes(), e.start)
        raise RegistryFileError(rel, f"is not valid {encoding} text at line {line} (mixed encodings? rows pasted from another file?)") from None
    except pl.exceptions.NoDataError:
        raise RegistryFileError(rel, "is empty (no header row)") from None
    except pl.exceptions.ComputeError as e:
        msg = str(e).splitlines()[0]
        if "invalid utf-8" in msg.lower():
            data = path.read_bytes()
            try:
                data.decode("utf-8-sig" if encoding == "utf-8-sig" else "utf-8")
                line = "?"
            except UnicodeDecodeError as e:
                line = str(_line_of(data, e.start))
            raise RegistryFileError(rel, f"is not valid UTF-8 at line {line} (mixed encodings? rows pasted from another file?)") from None
        raise RegistryFileError(rel, f"cannot be parsed as CSV: {msg}") from None


def _read_xlsx(path: Path, rel: str) -> pl.DataFrame:
    try:
        return pl.read_excel(path, sheet_id=1, infer_schema_length=0)
    except Exception as e:  # fastexcel raises its own error types for corrupt workbooks
        reason = str(e).splitlines()[0]
    if "empty" in reason.lower():  # the first sheet is empty: say where the data is
        try:
            import fastexcel

            book = fastexcel.read_excel(path)
            sheets = [name for name in book.sheet_names if book.load_sheet(name, header_row=None, n_rows=2).height]
        except Exception:  # noqa: BLE001 - only to improve the message
            sheets = []
        if sheets:
            raise RegistryFileError(rel, f"its first sheet is empty; the data is on sheet {sheets[0]!r}: move that sheet first")
        raise RegistryFileError(rel, "has no data on any sheet")
    raise RegistryFileError(rel, f"cannot be read as an XLSX workbook: {reason}")


def _header_problems(df: pl.DataFrame, rel: str) -> None:
    """A header the reader cannot trust: one column that looks like another delimiter, a header
    named twice, a column with data but no header (merged header cells)."""
    if df.width == 1 and (sep := next((c for c in (";", "\t", "|") if c in df.columns[0]), None)):
        raise RegistryFileError(rel, f"has a single column whose header is separated by {sep!r}, not by commas: "
                                     "save it as comma-separated CSV")
    twice = sorted({c.split("_duplicated_")[0] for c in df.columns if "_duplicated_" in c})
    if twice:
        raise RegistryFileError(rel, f"names these headers more than once: {', '.join(twice)}: keep one of each")
    for i, c in enumerate(df.columns, start=1):
        if (c == "" or c.startswith("__UNNAMED__")) and df[c].drop_nulls().len():
            raise RegistryFileError(rel, f"column {i} holds data but has no header (merged or blank header cells?): "
                                         "give every column its own header in the first row")


def _read_parquet(path: Path, rel: str) -> pl.DataFrame:
    try:
        df = pl.read_parquet(path)
    except Exception as e:  # polars/arrow raise several error types for corrupt files
        raise RegistryFileError(rel, f"cannot be read as Parquet: {str(e).splitlines()[0]}") from None
    sep = ";"
    return df.select(
        (pl.col(c).cast(pl.List(pl.String)).list.join(sep) if isinstance(t, pl.List) else pl.col(c).cast(pl.String)).alias(c)
        for c, t in df.schema.items()
    )


@dataclass(frozen=True)
class RawRegistry:
    """A file's rows as text, with headers mapped; what was noticed while reading it."""

    frame: pl.DataFrame
    encoding: str
    unmapped_headers: list[str]


def read_registry(file: RegistryFile) -> RawRegistry:
    """The file's rows as text under SPEC column names, with source_file and source_line."""
    suffix = FORMATS[file.path.suffix.lower()]
    if suffix == "csv":
        df, encoding = _read_csv(file.path, file.relative)
    elif suffix == "xlsx":
        df, encoding = _read_xlsx(file.path, file.relative), "xlsx"
    else:
        df, encoding = _read_parquet(file.path, file.relative), "parquet"
    _header_problems(df, file.relative)
    mapping = spec_headers(df.columns, file.kind)
    if not mapping:
        shown = ", ".join(df.columns[:5]) + (f" … ({df.width} columns)" if df.width > 5 else "")
        raise RegistryFileError(file.relative, f"no header names a column of {file.kind} (headers: {shown}); see the README for the "
                                               "accepted English and Chinese headers")
    targets = list(mapping.values())
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        cols = "; ".join(f"{t} ← {', '.join(h for h, v in mapping.items() if v == t)}" for t in dupes)
        raise RegistryFileError(file.relative, f"several headers name the same column ({cols}): keep one")
    unmapped = [h for h in df.columns if h not in mapping]
    df = df.select([pl.col(h).alias(n) for h, n in mapping.items()])
    df = df.with_columns(
        source_file=pl.lit(file.relative),
        source_line=(pl.int_range(pl.len(), dtype=pl.Int64) + 2),
    )
    return RawRegistry(df, encoding, unmapped)
