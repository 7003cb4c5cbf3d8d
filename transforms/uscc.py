"""The identifier rules of SPEC §3, in one place.

Every stage, test and verifier checks USCCs (统一社会信用代码, GB 32100-2015),
organization codes (组织机构代码, GB 11714) and 15-digit registration numbers
(注册号, ISO 7064 MOD 11,10) through this module. The checks are vectorised over
a whole column with numpy; the scalar helpers run the same code on one value.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, Z, S, V; values 0–30
USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28], dtype=np.int64)
USCC_AUTHORITIES = set("123456789ANY")  # position 1: registration authority
ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)

# Reason codes, in the order they are tested: the first failing rule names the row.
USCC_REASONS = {
    "uscc_stored_as_number": "USCC was stored as a number by a spreadsheet (9.14403E+17, or 18 digits whose last ones "
    "were rounded away): export the column as text and send the file again",
    "uscc_length": "USCC is not 18 characters long",
    "uscc_charset": "USCC has a character outside 0-9 and A-Y without I, O, Z, S, V",
    "uscc_authority": "USCC position 1 is not a registration authority code (1-9, A, N, Y)",
    "uscc_check_char": "USCC check character (position 18) is wrong",
    "uscc_org_check": "organization code inside the USCC (positions 9-17) fails its own check",
}
ORG_CODE_REASONS = {
    "org_code_format": "organization code is not 8 digits/letters plus a check character",
    "org_code_check": "organization code check character is wrong",
}
REG_NO_REASONS = {
    "reg_no_format": "registration number is not 15 digits",
    "reg_no_check": "registration number fails the ISO 7064 MOD 11,10 check",
}

_USCC_VALUE = np.full(256, -1, dtype=np.int8)
for _v, _c in enumerate(USCC_CHARSET):
    _USCC_VALUE[ord(_c)] = _v
_ORG_VALUE = np.full(256, -1, dtype=np.int8)  # digits 0-9, A=10 … Z=35
for _v, _c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
    _ORG_VALUE[ord(_c)] = _v


def _fixed_width(codes: pl.Series, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes as a (width, n) uint8 matrix, and a mask of those that are exactly `width` ASCII chars."""
    s = codes.cast(pl.String).fill_null("")
    fits = (s.str.len_bytes() == width) & (s.str.len_chars() == width)
    padded = pl.select(pl.when(fits).then(s).otherwise(pl.lit("0" * width))).to_series()
    # Every value is now exactly `width` ASCII bytes: the Arrow data buffer is the matrix.
    arr = pc.cast(padded.to_arrow(), pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = (
        np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]] if len(arr) else np.zeros(0, np.uint8)
    )
    # column-major (width, n): each character position is one contiguous vector
    return np.ascontiguousarray(data.reshape(len(padded), width).T), fits.to_numpy()


def _first_reason(codes: pl.Series, failed: list[np.ndarray], names: list[str], out_name: str) -> pl.Series:
    """The name of the first rule in `failed` that each row breaks; null when none does or the code is null."""
    index = np.select(failed, np.arange(1, len(failed) + 1, dtype=np.int8), default=0).astype(np.int8)
    lookup = pl.Series([None, *names], dtype=pl.String)
    reason = lookup.gather(pl.Series(index, dtype=pl.Int8))
    return reason.set(codes.is_null(), None).alias(out_name) if codes.null_count() else reason.alias(out_name)


def _weighted_sum(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ values[j]·weights[j] for a (k, n) matrix, position by position (no (k, n) int64 temporary)."""
    acc = np.zeros(values.shape[1], dtype=np.int64)
    for j, w in enumerate(weights):
        acc += values[j].astype(np.int64) * int(w)
    return acc


def uscc_check_char_values(first17: np.ndarray) -> np.ndarray:
    """Check character value (0–30) for a (17, n) matrix of USCC character values."""
    return (31 - _weighted_sum(first17, USCC_WEIGHTS) % 31) % 31


def org_check_chars(body8: np.ndarray) -> np.ndarray:
    """Check character ('0'–'9' or 'X', as uint8) for an (8, n) matrix of organization-code values."""
    c = 11 - _weighted_sum(body8, ORG_WEIGHTS) % 11
    return np.where(c == 10, ord("X"), np.where(c == 11, ord("0"), ord("0") + c)).astype(np.uint8)


def uscc_reasons(codes: pl.Series) -> pl.Series:
    """For each normalised code: null when it is a valid USCC, else the first failing reason code.

    Nulls in stay nulls out: a missing USCC is a separate rule (it may be linked by
    organization code or registration number).
    """
    chars, fits = _fixed_width(codes, 18)
    values = _USCC_VALUE[chars]
    in_charset = (values >= 0).all(axis=0)
    authority_ok = np.isin(chars[0], np.frombuffer("".join(sorted(USCC_AUTHORITIES)).encode(), np.uint8))
    safe = np.maximum(values, 0)
    check_ok = uscc_check_char_values(safe[:17]) == safe[17]
    org_ok = org_check_chars(np.maximum(_ORG_VALUE[chars[8:16]], 0)) == chars[16]
    failed = [stored_as_number(codes, check_ok), ~fits, ~in_charset, ~authority_ok, ~check_ok, ~org_ok]
    return _first_reason(codes, failed, list(USCC_REASONS), "uscc_reason")


def stored_as_number(codes: pl.Series, check_ok: np.ndarray) -> np.ndarray:
    """Codes a spreadsheet turned into a floating-point number: scientific notation (9.14403E+17), or
    18 digits that are exactly a 64-bit float (a number past 2^53 keeps about 16 significant digits:
    914403001922038216 → 914403001922038272) and fail the check. A real all-digit USCC that passes
    its check is kept, whatever it is as a float."""
    s = codes.cast(pl.String).fill_null("")
    scientific = s.str.contains(r"^\d+(\.\d+)?E\+?\d+$").to_numpy()
    digits = s.str.contains(r"^\d{18}$").to_numpy()
    as_int = s.cast(pl.UInt64, strict=False)
    exact_float = (as_int.cast(pl.Float64).cast(pl.UInt64, strict=False) == as_int).fill_null(False).to_numpy()
    return scientific | (digits & exact_float & ~check_ok)


def org_code_reasons(codes: pl.Series) -> pl.Series:
    """For each normalised 9-character organization code: null when valid, else a reason code."""
    chars, fits = _fixed_width(codes, 9)
    values = _ORG_VALUE[chars[:8]]
    body_ok = (values >= 0).all(axis=0)
    check_ok = org_check_chars(np.maximum(values, 0)) == chars[8]
    return _first_reason(codes, [~fits | ~body_ok, ~check_ok], list(ORG_CODE_REASONS), "org_code_reason")


def reg_no_check_digits(first14: np.ndarray) -> np.ndarray:
    """ISO 7064 MOD 11,10 check digit for a (14, n) matrix of digits."""
    p = np.full(first14.shape[1], 10, dtype=np.int64)
    for j in range(first14.shape[0]):
        s = (p + first14[j]) % 10
        s = np.where(s == 0, 10, s)
        p = (s * 2) % 11
    return (11 - p) % 10


def reg_no_reasons(codes: pl.Series) -> pl.Series:
    """For each 15-digit registration number (注册号): null when valid, else a reason code."""
    chars, fits = _fixed_width(codes, 15)
    digits = chars.astype(np.int64) - ord("0")
    all_digits = ((digits >= 0) & (digits <= 9)).all(axis=0)
    safe = np.where(all_digits[None, :], digits, 0)
    check_ok = reg_no_check_digits(safe[:14]) == safe[14]
    return _first_reason(codes, [~fits | ~all_digits, ~check_ok], list(REG_NO_REASONS), "reg_no_reason")


INVISIBLE = "[\u200b\u200c\u200d\u2060\ufeff]"  # zero-width characters systems put in to keep a code text
# what systems put around a code so a spreadsheet keeps it as text: a leading apostrophe ('9144…) or ="9144…"
SPREADSHEET_TEXT_GUARDS = (r"^'", r'^="(.*)"$')


def normalise_code(expr: pl.Expr) -> pl.Expr:
    """Codes as compared everywhere: full-width to ASCII (NFKC), no whitespace or zero-width characters,
    upper case, without a spreadsheet's text guard (a leading apostrophe, ="…"), '' → null.

    The guards go once (an apostrophe, then ="…"), and only when what is left is not guarded again:
    `''` or `="'X"` stay as written (no export writes them; the USCC check then names the value as
    it came), so that normalising twice gives the same code (hypothesis found `''` → `'` → null).

    NFKC runs again after the spaces go: a compatibility character can decompose into a space and
    a combining mark (´ → " ́"), which composes with the letter before it only once the space is
    gone — without the second pass, normalising twice would not give the same code (hypothesis
    found `A´`)."""
    e = expr.cast(pl.String)
    for _ in range(2):
        e = e.str.normalize("NFKC").str.replace_all(INVISIBLE, "").str.replace_all(r"\s+", "").str.to_uppercase()
    unguarded = _without_text_guard(e)
    e = pl.when(_has_text_guard(unguarded)).then(e).otherwise(unguarded)
    return pl.when(e == "").then(None).otherwise(e)


def _has_text_guard(e: pl.Expr) -> pl.Expr:
    return e.str.contains(SPREADSHEET_TEXT_GUARDS[0]) | e.str.contains(SPREADSHEET_TEXT_GUARDS[1])


def _without_text_guard(e: pl.Expr) -> pl.Expr:
    return e.str.replace(SPREADSHEET_TEXT_GUARDS[0], "").str.replace(SPREADSHEET_TEXT_GUARDS[1], "${1}")


def normalise_org_code(expr: pl.Expr) -> pl.Expr:
    """Organization codes are often written `12345678-9`: the hyphen is dropped."""
    return normalise_code(expr).str.replace_all("-", "", literal=True)


def uscc_problem(code: str | None) -> str | None:
    """Scalar form of `uscc_reasons` on one already-normalised code."""
    return uscc_reasons(pl.Series([code], dtype=pl.String))[0]


def complete_uscc(first17: str) -> str:
    """The 18-character USCC whose first 17 characters are given (test and generator helper)."""
    values = np.array([[USCC_CHARSET.index(c)] for c in first17], dtype=np.int64)
    return first17 + USCC_CHARSET[int(uscc_check_char_values(values)[0])]
