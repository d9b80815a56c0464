"""Profile and target files for `segments profiles import` and `segments targets import`: NDJSON
or CSV (or one key per line), read as a stream of checked lines.

NDJSON: one {"targetingKey": ..., "attributes": {...}} object per line. CSV: a header with a
`targetingKey` column; every other column becomes an attribute of that name, typed like JSON
(`42` → 42, `3.5` → 3.5, `true`/`false` → booleans, an empty cell → no attribute; `007`
stays text). Each line is checked by the same function the API uses, so a file imports
exactly what upsertProfiles would accept. Files are read line by line, never whole.
"""

import csv
import io
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import orjson

from rules.profiles import MAX_ATTRIBUTES_DEPTH, encoded_profile
from rules.validate import target_key_problem
from rules.values import loads_json, may_be_inexact

T = TypeVar("T")

NDJSON = "ndjson"
CSV = "csv"
_EXTENSIONS = {".ndjson": NDJSON, ".jsonl": NDJSON, ".json": NDJSON, ".csv": CSV}
_KEY_COLUMN = "targetingKey"
_NDJSON_FIELDS = frozenset((_KEY_COLUMN, "attributes"))
# JSON's number grammar: "007" or "1_000" stay strings, so identifiers keep their form.
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_BOOLEANS = {"true": True, "false": False}


class FileProblem(Exception):
    """The file as a whole cannot be read (no targetingKey column, not UTF-8, ...)."""


@dataclass(frozen=True, slots=True)
class Line:
    """One data line: a valid profile, or why it is not one."""

    number: int  # 1-based line of the file where the record starts
    profile: tuple[str, dict[str, Any], bytes] | None  # key, attributes, their compact JSON
    problem: str | None


def detect_format(path: Path) -> str:
    """By extension (.ndjson, .jsonl, .json, .csv), else by content: a first non-blank `{`
    means NDJSON, anything else CSV."""
    by_extension = _EXTENSIONS.get(path.suffix.lower())
    if by_extension:
        return by_extension
    with path.open("rb") as file:
        head = file.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return NDJSON if head.startswith(b"{") else CSV


class ProfileFile:
    """A profile file to read (each call of `lines` reads it again from the start); `position`
    tells how many bytes the current read has consumed, for progress bars."""

    def __init__(self, path: Path, file_format: str | None = None) -> None:
        self.path = path
        self.format = file_format or detect_format(path)
        self.size = path.stat().st_size
        self._raw: BinaryIO | None = None

    @property
    def position(self) -> int:
        raw = self._raw
        return raw.tell() if raw is not None and not raw.closed else self.size

    def lines(self) -> Iterator[Line]:
        return self._read(_ndjson_lines if self.format == NDJSON else _csv_lines)

    def _read(self, read: Callable[[BinaryIO], Iterator[T]]) -> Iterator[T]:
        """`read` over the file opened anew, decoding problems as a FileProblem."""
        with self.path.open("rb") as raw:
            self._raw = raw
            try:
                yield from read(raw)
            except UnicodeDecodeError as error:
                raise FileProblem(
                    f"the file is not UTF-8 text (byte {error.start} of a line)"
                ) from None


def _ndjson_lines(raw: BinaryIO) -> Iterator[Line]:
    for number, text in enumerate(raw, start=1):
        if number == 1 and text.startswith(b"\xef\xbb\xbf"):
            text = text[3:]
        if not text.strip():
            continue
        yield _ndjson_line(number, text)


def _ndjson_line(number: int, text: bytes) -> Line:
    inexact = may_be_inexact(text)
    try:
        value = loads_json(text, inexact)
    except orjson.JSONDecodeError:
        return Line(number, None, "not a valid JSON line")
    if type(value) is not dict:
        return Line(
            number, None, 'a line must be a JSON object {"targetingKey": ..., "attributes": {...}}'
        )
    unknown = sorted(set(value) - _NDJSON_FIELDS)
    if unknown:
        return Line(
            number, None, f'unknown field {unknown[0]!r}: attributes belong under "attributes"'
        )
    if _KEY_COLUMN not in value:
        return Line(number, None, "targetingKey is missing")
    # The line's brackets bound how deep its attributes nest (one level is the line itself).
    plain = not inexact and text.count(b"{") + text.count(b"[") <= MAX_ATTRIBUTES_DEPTH + 1
    return _checked(number, value[_KEY_COLUMN], value.get("attributes", {}), plain)


def _csv_lines(raw: BinaryIO) -> Iterator[Line]:
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            return
        if header.count(_KEY_COLUMN) != 1 or len(set(header)) != len(header):
            raise FileProblem(
                f"the CSV header needs exactly one {_KEY_COLUMN!r} column and no repeated names"
            )
        key_index = header.index(_KEY_COLUMN)
        columns = [(index, name) for index, name in enumerate(header) if index != key_index]
        start = reader.line_num + 1
        for row in reader:
            number, start = start, reader.line_num + 1
            if not row:
                continue
            if len(row) != len(header):
                yield Line(number, None, f"{len(row)} fields where the header has {len(header)}")
                continue
            attributes = {name: typed(row[index]) for index, name in columns if row[index] != ""}
            # `typed` makes only 64-bit integers, finite floats and flat objects: plain.
            yield _checked(number, row[key_index], attributes, plain=True)
    finally:
        text.detach()  # the caller closes the file


def typed(cell: str) -> Any:
    """A CSV cell as the JSON value it spells: integers (within 64 bits), finite decimals,
    true/false in any letter case; anything else stays text."""
    if _INTEGER.fullmatch(cell):
        number = int(cell)
        return number if -(2**63) <= number < 2**63 else cell
    if _DECIMAL.fullmatch(cell):
        decimal = float(cell)
        return decimal if math.isfinite(decimal) else cell
    return _BOOLEANS.get(cell.lower(), cell)


def _checked(number: int, targeting_key: Any, attributes: Any, plain: bool) -> Line:
    encoded, problems = encoded_profile(targeting_key, attributes, plain=plain)
    if problems:
        return Line(number, None, "; ".join(problem.message for problem in problems))
    return Line(number, (targeting_key, attributes, encoded), None)


# Target files for `segments targets import`: one key per line, or a CSV with a targetingKey
# column (other columns ignored). Every key is checked as updateSegmentTargets checks it.
LINES = "lines"


@dataclass(frozen=True, slots=True)
class TargetLine:
    """One data line: a valid key, or why it is not one."""

    number: int
    key: str | None
    problem: str | None


class TargetFile(ProfileFile):
    """A file of target keys, read again from the start by each call of `targets`."""

    def __init__(self, path: Path, file_format: str | None = None) -> None:
        super().__init__(path, file_format or (CSV if path.suffix.lower() == ".csv" else LINES))

    def targets(self) -> Iterator[TargetLine]:
        return self._read(_key_lines if self.format == LINES else _csv_keys)


def _target_line(number: int, key: str) -> TargetLine:
    problem = target_key_problem(key)
    return TargetLine(number, None if problem else key, problem)


def _key_lines(raw: BinaryIO) -> Iterator[TargetLine]:
    for number, data in enumerate(raw, start=1):
        if number == 1 and data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        text = data.decode("utf-8").rstrip("\r\n")
        if text.strip():
            yield _target_line(number, text)


def _csv_keys(raw: BinaryIO) -> Iterator[TargetLine]:
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            return
        if header.count(_KEY_COLUMN) != 1:
            raise FileProblem(f"the CSV header needs exactly one {_KEY_COLUMN!r} column")
        key_index = header.index(_KEY_COLUMN)
        start = reader.line_num + 1
        for row in reader:
            number, start = start, reader.line_num + 1
            if not row:
                continue
            if len(row) != len(header):
                yield TargetLine(
                    number, None, f"{len(row)} fields where the header has {len(header)}"
                )
                continue
            yield _target_line(number, row[key_index])
    finally:
        text.detach()  # the caller closes the file
