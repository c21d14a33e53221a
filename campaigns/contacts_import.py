"""Import contacts from CSV or XLSX into the directory, streaming, in one transaction.

The file is read row by row (CSV: any of ``, ; TAB``, UTF-8 with or without BOM, UTF-16
with BOM, else cp1252; XLSX: openpyxl read-only) and written in chunks, so memory stays
flat whatever the size; only the numbers already seen are kept (as integers) to merge
duplicates. Everything happens in ONE database transaction: an import that stops
(error, Ctrl-C, crash) leaves the directory as it was, and running it again is safe.
On SQLite the write lock is held for the whole import, so a running server waits (and
answers SMTP with a temporary error after ``busy_timeout``) during a very large one.
"""

from __future__ import annotations

import csv
import os
import re
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from campaigns.contacts_files import ImportProblem, cell_text, open_rows
from sms.phones import normalise
from store import contacts, contacts_bulk
from store.db import session_scope

__all__ = ["ImportOptions", "ImportProblem", "ImportProgress", "ImportResult",
           "import_contacts", "parse_birthday", "parse_overrides"]

STANDARD = ("phone", "first_name", "last_name", "email", "birthday")
_CHUNK = 2000  # rows per batch handed to a worker and to the database
#: Header words (folded) that name each standard column; phone words by preference.
_PHONE_WORDS = ({"mobile", "portable", "gsm", "cell", "cellulaire", "msisdn", "sms"},
                {"phone", "telephone", "tel", "numero", "number", "num"})
_EXACT = {
    "first_name": {"first name", "firstname", "prenom", "prenoms", "given name", "forename"},
    "last_name": {"last name", "lastname", "nom", "nom de famille", "surname", "family name"},
}
_EMAIL_WORDS = {"email", "mail", "courriel", "mel"}
_BIRTH_WORDS = {"birthday", "birthdate", "birth", "naissance", "anniversaire", "dob", "ddn"}
# ISO (year first) or French (day first) dates; strptime is ten times slower than this.
_YEAR_FIRST = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_DAY_FIRST = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")


@dataclass(frozen=True)
class ImportProgress:
    rows: int  # data rows read so far
    position: int  # bytes (CSV) or rows (XLSX) read
    total: int | None  # file size, or row count when the sheet gives it


@dataclass
class ImportResult:
    rows: int = 0  # data rows (blank rows not counted)
    added: int = 0
    updated: int = 0
    unchanged: int = 0  # already there: skipped (add) or nothing new (update)
    rejected: int = 0  # invalid number, landline, no number
    duplicates: int = 0  # the same number on an earlier line (the first one wins)
    warnings: int = 0  # imported, but a value was dropped (birthday not a date ...)
    rejects_path: Path | None = None  # written only when something was reported
    columns: dict[str, str] = field(default_factory=dict)  # standard field -> header
    custom: list[str] = field(default_factory=list)  # custom field names
    seconds: float = 0.0


@dataclass(frozen=True)
class _Layout:
    """Which cell holds what, decided from the header."""

    indexes: dict[str, int]  # standard field -> 0-based column
    custom: tuple[tuple[int, str], ...]  # (column, field name)
    country: str


def fold_header(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


def _slug(header: str, index: int, taken: set[str]) -> str:
    """A custom field name usable in a template: ``Code client`` -> ``code_client``."""
    name = fold_header(header).replace(" ", "_") or f"column_{index + 1}"
    if name[0].isdigit():
        name = f"f_{name}"
    base, n = name, 2
    while name in taken or name in STANDARD or name == "number":
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def detect_columns(header: Sequence[str]) -> dict[str, int]:
    """Standard field -> 0-based column, from header names in French or English."""
    found: dict[str, int] = {}
    phone_rank = len(_PHONE_WORDS)
    for index, cell in enumerate(header):
        name = fold_header(cell)
        words = set(name.split())
        for rank, vocabulary in enumerate(_PHONE_WORDS):
            if words & vocabulary and rank < phone_rank and "fax" not in words:
                found["phone"], phone_rank = index, rank
                break
        for key, names in _EXACT.items():
            if name in names and key not in found:
                found[key] = index
        if words & _EMAIL_WORDS and "email" not in found:
            found["email"] = index
        elif (words & _BIRTH_WORDS or name.startswith("date of birth")) \
                and "birthday" not in found:
            found["birthday"] = index
    return found


def _override(header: Sequence[str], target: str, column: str) -> int:
    if column.isdigit():
        index = int(column) - 1
        if not 0 <= index < max(len(header), 1):
            raise ImportProblem(f"--column {target}={column}: the file has {len(header)} "
                                "column(s)")
        return index
    for index, cell in enumerate(header):
        if fold_header(cell) == fold_header(column):
            return index
    raise ImportProblem(f"--column {target}={column}: no such column; the header has: "
                        + ", ".join(repr(c) for c in header))


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["phone=Portable", "first-name=2"]`` -> ``{"phone": "Portable", ...}``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not sep or key not in STANDARD or not value.strip():
            raise ImportProblem(f"--column {item!r}: expected FIELD=COLUMN with FIELD one of "
                                f"{', '.join(STANDARD)} and COLUMN a header name or a "
                                "1-based number")
        out[key] = value.strip()
    return out


def layout_of(first: Sequence[str], overrides: dict[str, str], country: str
              ) -> tuple[_Layout, bool]:
    """The layout, and whether ``first`` is a header (False: it is already data)."""
    indexes = detect_columns(first)
    for target, column in overrides.items():
        indexes[target] = _override(first, target, column)
    has_header = True
    phone = indexes.get("phone")
    if phone is None or (phone < len(first) and normalise(first[phone], country).e164):
        # no header naming a phone column: a file of data rows if a cell is a number
        cells = [phone] if phone is not None else range(len(first))
        data = [i for i in cells if normalise(first[i], country).e164]
        if not data:
            raise ImportProblem("no phone column found: name it phone, téléphone, mobile, "
                                "portable, numéro or gsm, or say which with --column "
                                "phone=COLUMN")
        has_header = False
        indexes = {"phone": data[0], **{k: _override(first, k, v) for k, v in
                                        overrides.items() if v.isdigit() and k != "phone"}}
        first = [f"column_{i + 1}" for i in range(len(first))]
    used = set(indexes.values())
    taken: set[str] = set()
    custom = tuple((i, _slug(cell, i, taken)) for i, cell in enumerate(first) if i not in used)
    return _Layout(indexes, custom, country), has_header


def parse_birthday(text: str) -> str | None:
    """An ISO date from the usual notations (ISO, French day first), None otherwise."""
    text = text.strip().split(" ")[0].split("T")[0]
    if match := _YEAR_FIRST.fullmatch(text):
        year, month, day = match.groups()
    elif match := _DAY_FIRST.fullmatch(text):
        day, month, year = match.groups()
    else:
        return None
    try:
        return date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None


#: (line, record or None, raw number, reason): a record to store, or a row to report.
_Outcome = tuple[int, dict[str, Any] | None, str, str | None]


def prepare_rows(rows: Sequence[tuple[int, Sequence[Any]]], layout: _Layout
                 ) -> list[_Outcome]:
    """Normalise a batch of rows (runs in a worker process for large files)."""
    out: list[_Outcome] = []
    idx = layout.indexes
    for line, values in rows:
        cells = [cell_text(v) for v in values]
        if not any(cells):
            continue
        std = {k: cells[i] if i < len(cells) else "" for k, i in idx.items()}
        get = std.get
        raw = get("phone", "")
        if not raw:
            out.append((line, None, raw, "no number"))
            continue
        phone = normalise(raw, layout.country)
        if phone.e164 is None or phone.reason:
            out.append((line, None, raw, phone.reason or "invalid number"))
            continue
        record: dict[str, Any] = {"number": phone.e164, "first_name": get("first_name", ""),
                                  "last_name": get("last_name", ""), "email": get("email", ""),
                                  "fields": {name: cells[i] for i, name in layout.custom
                                             if i < len(cells) and cells[i]}}
        dropped = []
        if birthday := get("birthday", ""):
            record["birthday"] = parse_birthday(birthday)
            if record["birthday"] is None:
                dropped.append(f"birthday {birthday!r} is not a date")
        if record["email"] and "@" not in record["email"]:
            dropped.append(f"email {record['email']!r} has no @")
            record["email"] = ""
        warning = "; ".join(dropped) + ": imported without it" if dropped else None
        out.append((line, record, raw, warning))
    return out


# --- the import --------------------------------------------------------------------


@dataclass
class ImportOptions:
    mode: str = "add"  # add: existing contacts untouched | update: given values replace
    groups: Sequence[str] = ()  # every imported contact joins these (created if needed)
    columns: dict[str, str] = field(default_factory=dict)  # overrides, parse_overrides
    country: str = "FR"
    rejects: Path | None = None  # default: FILE.rejects.csv beside the file
    progress: Callable[[ImportProgress], None] | None = None
    workers: int | None = None  # processes normalising numbers; None: by file size


class _Reporter:
    """The rejected-rows file (line, number, reason), opened at the first problem."""

    def __init__(self, path: Path):
        self.path, self.file, self.writer = path, None, None

    def write(self, line: int, raw: str, reason: str) -> None:
        if self.writer is None:
            self.file = self.path.open("w", newline="", encoding="utf-8")
            self.writer = csv.writer(self.file)
            self.writer.writerow(["line", "number", "reason"])
        self.writer.writerow([line, raw, reason])

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _workers(path: Path, asked: int | None) -> int:
    if asked is not None:
        return asked
    if path.stat().st_size < 4 << 20:  # a pool costs more than it saves on small files
        return 0
    return min(4, os.cpu_count() or 1)


def _batches(rows: Iterator[tuple[int, Sequence[Any]]]) -> Iterator[list[tuple[int, Any]]]:
    batch: list[tuple[int, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _prepared(batches: Iterator[list[tuple[int, Any]]], layout: _Layout, workers: int
              ) -> Iterator[list[_Outcome]]:
    """Batches normalised in order; with workers, a few batches ahead, never more."""
    if workers <= 0:
        for batch in batches:
            yield prepare_rows(batch, layout)
        return
    pool: Executor = ProcessPoolExecutor(max_workers=workers)
    pending: deque[Future[list[_Outcome]]] = deque()
    try:
        for batch in batches:
            pending.append(pool.submit(prepare_rows, batch, layout))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def import_contacts(engine: Engine, path: Path, options: ImportOptions) -> ImportResult:
    """Import the file in one transaction; the counts, and where problems were written."""
    if options.mode not in ("add", "update"):
        raise ImportProblem(f"--mode {options.mode!r}: expected add or update")
    started = time.monotonic()
    rows, position, total, closer = open_rows(path)
    result = ImportResult()
    reporter = _Reporter(options.rejects or path.with_name(path.stem + ".rejects.csv"))
    try:
        try:
            line, first = next(iter(rows))
        except StopIteration:
            raise ImportProblem(f"{path} is empty") from None
        except UnicodeDecodeError as exc:
            raise ImportProblem(f"{path}: {exc}") from exc
        first_cells = [cell_text(v) for v in first]
        layout, has_header = layout_of(first_cells, options.columns, options.country)
        header = first_cells if has_header else [f"column_{i + 1}" for i in
                                                 range(len(first_cells))]
        result.columns = {k: header[i] for k, i in layout.indexes.items() if i < len(header)}
        result.custom = [name for _, name in layout.custom]

        def all_rows() -> Iterator[tuple[int, Sequence[Any]]]:
            if not has_header:
                yield line, first
            yield from rows

        seen: set[int] = set()  # numbers as integers: a third of the memory of strings
        with session_scope(engine) as session:
            group_ids = contacts.ensure_groups(session, list(options.groups))
            for outcomes in _prepared(_batches(all_rows()), layout,
                                      _workers(path, options.workers)):
                batch = []
                for row_line, record, raw, reason in outcomes:
                    result.rows += 1
                    if record is None:
                        result.rejected += 1
                        reporter.write(row_line, raw, reason or "invalid number")
                        continue
                    key = int(record["number"][1:])
                    if key in seen:
                        result.duplicates += 1
                        reporter.write(row_line, raw, "duplicate of an earlier line "
                                       "(the first one is kept)")
                        continue
                    seen.add(key)
                    if reason:
                        result.warnings += 1
                        reporter.write(row_line, raw, reason)
                    batch.append(record)
                counts = contacts_bulk.upsert_contacts(session, batch, mode=options.mode,
                                                  group_ids=group_ids)
                result.added += counts.added
                result.updated += counts.updated
                result.unchanged += counts.unchanged
                if options.progress:
                    options.progress(ImportProgress(result.rows, position(), total))
    except contacts.ContactError as exc:
        raise ImportProblem(str(exc)) from exc
    finally:
        closer.close()
        reporter.close()
    result.rejects_path = reporter.path if reporter.file is not None else None
    result.seconds = time.monotonic() - started
    return result
