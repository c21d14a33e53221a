"""Reading contact files row by row: CSV in any usual dialect and encoding, and XLSX."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO


class ImportProblem(ValueError):
    """The file cannot be imported at all (unreadable, no phone column, bad option)."""


def cell_text(value: Any) -> str:
    """A cell as text; spreadsheet numbers and dates as people typed them."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() \
            else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a number typed in a spreadsheet cell: 612345678.0
    return str(value).strip()


# --- reading -----------------------------------------------------------------------


class _Counting(io.RawIOBase):
    """Counts the bytes read, for a progress bar over a text stream."""

    def __init__(self, raw: Any):
        self.raw, self.count = raw, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.count = self.raw.seek(offset, whence)
        return self.count

    def tell(self) -> int:
        return self.count

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer) or 0
        self.count += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def sniff_encoding(path: Path) -> str:
    with path.open("rb") as raw:
        head = raw.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        raw.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:  # the whole file: a cp1252 byte may come after the first megabyte
            while block := raw.read(1 << 20):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8"


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the first lines into the same, largest number of
    fields."""
    lines = [line for line in sample.splitlines()[:20] if line.strip()]
    if len(lines) > 1 and len(sample) >= 60_000:
        lines = lines[:-1]  # probably cut short
    best, score = ",", (0, 0)
    for delimiter in (",", ";", "\t"):
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        if not counts or counts[0] < 2:
            continue
        candidate = (sum(c == counts[0] for c in counts), counts[0])
        if candidate > score:
            best, score = delimiter, candidate
    return best


def _csv_rows(path: Path) -> tuple[Iterator[tuple[int, list[str]]], Callable[[], int], Any]:
    encoding = sniff_encoding(path)
    counting = _Counting(path.open("rb"))
    stream: TextIO = io.TextIOWrapper(io.BufferedReader(counting, 1 << 16),
                                      encoding=encoding, errors="replace", newline="")
    sample = stream.read(64 * 1024)
    delimiter = sniff_delimiter(sample)
    stream.seek(0)
    return _numbered(csv.reader(stream, delimiter=delimiter)), lambda: counting.count, stream


def _numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Rows with the line they start on (a quoted cell may span lines)."""
    end = 0
    for row in reader:
        yield end + 1, row
        end = reader.line_num


def _xlsx_rows(path: Path) -> tuple[Iterator[tuple[int, Sequence[Any]]], int | None, Any]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise ImportProblem(f"{path}: not a readable XLSX file ({exc})") from exc
    sheet = book.worksheets[0]
    rows = enumerate(sheet.iter_rows(values_only=True), start=1)
    return rows, sheet.max_row, book


def open_rows(path: Path) -> tuple[Iterator[tuple[int, Sequence[Any]]], Callable[[], int],
                               int | None, Any]:
    """(line, cells) of every row, the read position, its total, and what to close."""
    try:
        with path.open("rb") as raw:
            zipped = raw.read(4) == b"PK\x03\x04"
    except OSError as exc:
        raise ImportProblem(f"cannot read {path}: {exc}") from exc
    if zipped or path.suffix.lower() in (".xlsx", ".xlsm"):
        rows, total, book = _xlsx_rows(path)
        counter = _RowCounter(rows)
        return counter, lambda: counter.count, total, book
    if path.suffix.lower() in (".xls", ".ods"):
        raise ImportProblem(f"{path}: save it as XLSX or CSV first")
    csv_rows, position, stream = _csv_rows(path)
    return csv_rows, position, path.stat().st_size, stream


class _RowCounter:
    def __init__(self, rows: Iterator[tuple[int, Sequence[Any]]]):
        self.rows, self.count = rows, 0

    def __iter__(self) -> Iterator[tuple[int, Sequence[Any]]]:
        for row in self.rows:
            self.count = row[0]
            yield row


