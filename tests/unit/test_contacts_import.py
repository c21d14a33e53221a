"""Contact import: column detection, notations, duplicates, rejects, modes, CSV dialects
and encodings, XLSX, and the one-transaction guarantee, into a real SQLite database."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.contacts_files import sniff_delimiter, sniff_encoding
from campaigns.contacts_import import (
    ImportOptions,
    ImportProblem,
    ImportProgress,
    detect_columns,
    import_contacts,
    parse_birthday,
    parse_overrides,
)
from store import contacts
from store.db import make_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'contacts.db'}")
    yield engine
    engine.dispose()


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def members(engine: Engine, group: str) -> dict[str, dict]:
    with Session(engine) as session:
        found = contacts.group_members(session, group)
    assert found is not None
    return dict(found)


def everyone(engine: Engine) -> dict[str, contacts.Contact]:
    with Session(engine) as session:
        return {c.number: c for c in contacts.list_contacts(session, limit=None)}


def rejects(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.reader(file))[1:]


# --- column detection ----------------------------------------------------------------


def test_french_headers() -> None:
    header = ["Prénom", "NOM", "N° de téléphone", "Courriel", "Date de naissance", "Ville"]
    assert detect_columns(header) == {"first_name": 0, "last_name": 1, "phone": 2,
                                      "email": 3, "birthday": 4}


def test_english_headers() -> None:
    header = ["First name", "Last_Name", "E-mail", "Mobile", "Birthday", "City"]
    assert detect_columns(header) == {"first_name": 0, "last_name": 1, "email": 2,
                                      "phone": 3, "birthday": 4}


@pytest.mark.parametrize("header", [["Téléphone fixe", "Portable"], ["Phone", "GSM"],
                                    ["Tel", "Fax", "Mobile phone"]])
def test_a_mobile_column_wins_over_a_phone_column(header: list[str]) -> None:
    assert detect_columns(header)["phone"] == len(header) - 1


def test_override_by_name_and_by_index(tmp_path: Path, engine: Engine) -> None:
    path = write(tmp_path / "c.csv", "Tel bureau,Perso,Qui\n0142000000,0612345678,Ann\n")
    options = ImportOptions(columns=parse_overrides(["phone=perso", "first-name=3"]),
                            groups=["G"])
    result = import_contacts(engine, path, options)
    assert result.added == 1 and result.columns == {"phone": "Perso", "first_name": "Qui"}
    assert members(engine, "G")["+33612345678"] == {
        "number": "+33612345678", "first_name": "Ann", "tel_bureau": "0142000000"}


@pytest.mark.parametrize("items", [["phone"], ["colour=2"], ["phone="]])
def test_bad_override_is_refused(items: list[str]) -> None:
    with pytest.raises(ImportProblem, match="FIELD=COLUMN"):
        parse_overrides(items)


def test_override_naming_a_missing_column(tmp_path: Path, engine: Engine) -> None:
    path = write(tmp_path / "c.csv", "Nom,Portable\nA,0612345678\n")
    with pytest.raises(ImportProblem, match=r"no such column.*'Nom', 'Portable'"):
        import_contacts(engine, path, ImportOptions(columns={"phone": "Mobile"}))
    with pytest.raises(ImportProblem, match="has 2 column"):
        import_contacts(engine, path, ImportOptions(columns={"phone": "7"}))


def test_no_phone_column(tmp_path: Path, engine: Engine) -> None:
    path = write(tmp_path / "c.csv", "Nom,Ville\nA,Lyon\n")
    with pytest.raises(ImportProblem, match="--column phone=COLUMN"):
        import_contacts(engine, path, ImportOptions())


def test_file_without_header(tmp_path: Path, engine: Engine) -> None:
    path = write(tmp_path / "c.csv", "Ann;06 12 34 56 78\nBob;06 12 34 56 79\n")
    result = import_contacts(engine, path, ImportOptions(groups=["G"]))
    assert result.added == 2
    assert members(engine, "G")["+33612345678"]["column_1"] == "Ann"


# --- numbers, duplicates, rejects ------------------------------------------------------


def test_notations_duplicates_and_rejects(tmp_path: Path, engine: Engine) -> None:
    path = write(tmp_path / "c.csv", (
        "phone,first_name,note\n"
        "06 12 34 56 78,First,a\n"          # line 2
        "+33 6 12 34 56 78,Second,b\n"      # 3: the same number
        "0033612345678,Third,c\n"           # 4: again
        "6.12.34.56.79,Dot,d\n"             # 5
        "+33 (0)7 51 22 33 44,Bracket,e\n"  # 6
        "01 42 68 53 00,Landline,f\n"       # 7
        "12345,Short,g\n"                   # 8
        ",Nobody,h\n"                       # 9
        ",,\n"                              # blank: not a row
        '"06 90 12 34 56","Multi\nline",i\n'  # 11–12: overseas mobile
        "0612345680,Last,j\n"               # 13
    ))
    result = import_contacts(engine, path, ImportOptions())
    assert (result.rows, result.added, result.rejected, result.duplicates) == (10, 5, 3, 2)
    assert set(everyone(engine)) == {"+33612345678", "+33612345679", "+33751223344",
                                     "+590690123456", "+33612345680"}
    assert everyone(engine)["+33612345678"].first_name == "First"  # the first one wins
    assert result.rejects_path == tmp_path / "c.rejects.csv"
    reported = rejects(result.rejects_path)
    assert [row[0] for row in reported] == ["3", "4", "7", "8", "9"]
    assert reported[0][2].startswith("duplicate") and reported[2][2].startswith("landline")
    assert reported[3][1:] == ["12345", "invalid number"]
    assert reported[4][1:] == ["", "no number"]


def test_warnings_keep_the_row(tmp_path: Path, engine: Engine) -> None:
    path = write(tmp_path / "c.csv", "mobile,email,birthday\n0612345678,nope,31/02/1990\n")
    report = tmp_path / "out" / "problems.csv"
    report.parent.mkdir()
    result = import_contacts(engine, path, ImportOptions(rejects=report))
    assert result.added == 1 and result.warnings == 1 and result.rejects_path == report
    contact = everyone(engine)["+33612345678"]
    assert contact.email is None and contact.birthday is None
    assert "birthday '31/02/1990' is not a date" in rejects(report)[0][2]


def test_no_report_file_when_all_rows_are_good(tmp_path: Path, engine: Engine) -> None:
    result = import_contacts(engine, write(tmp_path / "c.csv", "gsm\n0612345678\n"),
                             ImportOptions())
    assert result.rejects_path is None and not (tmp_path / "c.rejects.csv").exists()


@pytest.mark.parametrize(("text", "iso"), [("1980-11-24", "1980-11-24"),
                                           ("24/11/1980", "1980-11-24"),
                                           ("24.11.1980", "1980-11-24"),
                                           ("1980-11-24 00:00:00", "1980-11-24"),
                                           ("11/24/1980", None), ("demain", None)])
def test_birthdays(text: str, iso: str | None) -> None:
    assert parse_birthday(text) == iso


# --- dialects and encodings -------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiters(delimiter: str, tmp_path: Path, engine: Engine) -> None:
    rows = [["Prénom", "Portable", "Solde"], ["Zoé", "06 12 34 56 78", "1,5"],
            ["Noël", "06 12 34 56 79", "2,5"]]
    text = "\n".join(delimiter.join(f'"{c}"' if delimiter in c else c for c in row)
                     for row in rows) + "\n"
    assert sniff_delimiter(text) == delimiter
    import_contacts(engine, write(tmp_path / "c.csv", text), ImportOptions(groups=["G"]))
    assert members(engine, "G")["+33612345679"] == {
        "number": "+33612345679", "first_name": "Noël", "solde": "2,5"}


@pytest.mark.parametrize(("encoding", "expected"), [("utf-8", "utf-8"),
                                                    ("utf-8-sig", "utf-8-sig"),
                                                    ("cp1252", "cp1252"),
                                                    ("utf-16", "utf-16")])
def test_encodings(encoding: str, expected: str, tmp_path: Path, engine: Engine) -> None:
    path = write(tmp_path / "c.csv", "Prénom;Téléphone\nHélène;0612345678\n", encoding)
    assert sniff_encoding(path) == expected
    result = import_contacts(engine, path, ImportOptions())
    assert result.columns == {"first_name": "Prénom", "phone": "Téléphone"}
    assert everyone(engine)["+33612345678"].first_name == "Hélène"


def test_cp1252_byte_far_into_the_file(tmp_path: Path) -> None:
    text = "gsm;nom\n" + "0612345678;Dupont\n" * 70_000 + "0612345679;Ã©lodie\n"
    path = write(tmp_path / "c.csv", text.replace("Ã©", "é"), "cp1252")
    assert sniff_encoding(path) == "cp1252"


# --- XLSX ---------------------------------------------------------------------------------


def test_xlsx(tmp_path: Path, engine: Engine) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["Portable", "Prénom", "Anniversaire", "Points"])
    sheet.append([612345678, "Léa", datetime(1990, 5, 17), 12])  # a number cell: no 0
    sheet.append(["+33 6 12 34 56 79", "Hugo", date(2001, 1, 2), 3.5])
    sheet.append([None, None, None, None])
    sheet.append(["0142685300", "Fixe", None, None])
    path = tmp_path / "contacts.xlsx"
    book.save(path)
    result = import_contacts(engine, path, ImportOptions(groups=["Clients"]))
    assert (result.rows, result.added, result.rejected) == (3, 2, 1)
    assert members(engine, "clients") == {
        "+33612345678": {"number": "+33612345678", "first_name": "Léa",
                         "birthday": "1990-05-17", "points": "12"},
        "+33612345679": {"number": "+33612345679", "first_name": "Hugo",
                         "birthday": "2001-01-02", "points": "3.5"},
    }
    assert rejects(tmp_path / "contacts.rejects.csv") == [
        ["5", "0142685300", "landline (cannot receive SMS)"]]


def test_old_excel_files_are_refused(tmp_path: Path, engine: Engine) -> None:
    with pytest.raises(ImportProblem, match="XLSX or CSV"):
        import_contacts(engine, write(tmp_path / "c.xls", "x"), ImportOptions())


# --- modes, groups, the transaction ---------------------------------------------------------


def test_modes(tmp_path: Path, engine: Engine) -> None:
    first = write(tmp_path / "a.csv", "gsm,prénom,nom,ville\n0612345678,Ann,Lee,Lyon\n")
    import_contacts(engine, first, ImportOptions(groups=["Staff"]))
    second = write(tmp_path / "b.csv", "gsm,prénom,nom,code\n0612345678,Anna,,7\n"
                                       "0612345679,Bob,,\n")
    added = import_contacts(engine, second, ImportOptions(groups=["STAFF", "Vip"]))
    assert (added.added, added.unchanged, added.updated) == (1, 1, 0)
    assert everyone(engine)["+33612345678"].first_name == "Ann"  # add: untouched
    assert set(members(engine, "vip")) == {"+33612345678", "+33612345679"}

    updated = import_contacts(engine, second, ImportOptions(mode="update"))
    assert (updated.added, updated.updated, updated.unchanged) == (0, 1, 1)
    assert members(engine, "staff")["+33612345678"] == {  # empty cells keep the old value
        "number": "+33612345678", "first_name": "Anna", "last_name": "Lee", "ville": "Lyon",
        "code": "7"}
    again = import_contacts(engine, second, ImportOptions(mode="update"))
    assert (again.updated, again.unchanged) == (0, 2)
    with Session(engine) as session:
        assert contacts.list_groups(session) == [("Staff", 2), ("Vip", 2)]


def test_an_interrupted_import_leaves_nothing(tmp_path: Path, engine: Engine) -> None:
    rows = "".join(f"06{n:08d},P{n}\n" for n in range(5000))
    path = write(tmp_path / "c.csv", "mobile,prénom\n" + rows)

    def stop(progress: ImportProgress) -> None:
        if progress.rows >= 4000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_contacts(engine, path, ImportOptions(groups=["New"], progress=stop))
    with Session(engine) as session:
        assert contacts.count_contacts(session) == 0 and contacts.list_groups(session) == []


@pytest.mark.parametrize("workers", [0, 2])
def test_thousands_of_rows_inline_and_in_worker_processes(
    workers: int, tmp_path: Path, engine: Engine
) -> None:
    rows = "".join(f"+33 6 {n // 10000 % 100:02d} {n // 100 % 100:02d} {n % 100:02d} 00;N{n}\n"
                   for n in range(6000))
    path = write(tmp_path / "c.csv", "portable;nom\n" + rows + "06 00 00 00 00;dup\n")
    seen: list[ImportProgress] = []
    result = import_contacts(engine, path, ImportOptions(workers=workers, groups=["All"],
                                                         progress=seen.append))
    assert (result.rows, result.added, result.duplicates) == (6001, 6000, 1)
    assert seen[-1].rows == 6001 and seen[-1].position == seen[-1].total
    assert len(members(engine, "all")) == 6000
