"""What erasure purges beside the log: quarantined CDR rows, call-directory entries,
and how it recognises a person in records their events cannot point at."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from channels.phone.cdr_tail import Quarantine
from channels.phone.directory import SQLiteCallDirectory
from touchstream.privacy.mentions import Mentions

ADA = Mentions([("email", "ada@example.com"), ("phone", "+442079460123")])


def test_a_number_is_recognised_however_it_was_written() -> None:
    for written in ("+442079460123", "+44 20 7946 0123", "00442079460123", "020 7946 0123",
                    "(020) 7946-0123", "tel:+442079460123"):
        assert ADA.in_field(written), written
    assert ADA.in_field("please call me back on 020 7946 0123 after six")
    assert ADA.in_field("ADA@Example.COM")
    assert ADA.in_field("Ada Lovelace <ada@example.com>") and ADA.in_field("email:ada@example.com")
    assert ADA.in_field("mailto:ada@example.com.")  # the end of a sentence


def test_other_numbers_and_long_ids_ending_in_the_same_digits_are_not_the_person() -> None:
    for other in ("+442079460124", "2079460", "1700000002079460123", "1700000000.2079460123",
                  "bob@example.com", "nada@example.com", "ada@example.com.evil", ""):
        assert not ADA.in_field(other), other
    assert not Mentions([])
    assert not Mentions([("phone", "+44123")]).numbers  # too short to match safely


def test_a_cdr_row_names_the_person_in_any_cell_parsed_or_not() -> None:
    assert ADA.in_row(b'"","02079460123","100","from-internal"')
    assert ADA.in_row(b"garbage;;+44 20 7946 0123;\xff\xfe")
    assert not ADA.in_row(b'"","02079460999","100","from-internal"')
    assert ADA.in_value({"fields": {"message": "x", "email": "ada@example.com"}})
    assert ADA.in_value(["a", {"to": ["ADA@example.com"]}])
    assert not ADA.in_value({"pages": 3, "to": ["bob@example.com"]})


def test_purging_the_quarantine_removes_only_the_persons_rows_and_zeroes_the_old_file(
        tmp_path: Path) -> None:
    q = Quarantine(tmp_path / "quarantine" / "cdr.jsonl")
    q.put("Master.csv", 0, b'"","02079460123","100","bad-date"', "malformed: bad date")
    q.put("Master.csv", 40, b'"","02079460999","100","bad-date"', "malformed: bad date")
    q.put("Master.csv", 80, b"+44 20 7946 0123,torn", "incomplete last line")
    witness = tmp_path / "witness"
    os.link(q.path, witness)  # keeps the old inode in sight after the replace
    size = witness.stat().st_size

    def names_ada(entry: dict[str, object]) -> bool:
        return ADA.in_row(base64.b64decode(str(entry["raw_base64"])))

    assert q.purge(names_ada) == 2
    [left] = q.entries()
    assert base64.b64decode(left["raw_base64"]) == b'"","02079460999","100","bad-date"'
    assert witness.read_bytes() == b"\0" * size
    left_on_disk = b"".join(p.read_bytes() for p in q.path.parent.iterdir() if p.is_file())
    for gone in (b'"","02079460123","100","bad-date"', b"+44 20 7946 0123,torn"):
        assert base64.b64encode(gone) not in left_on_disk
    assert q.purge(names_ada) == 0  # nothing more: the file is left as it is
    assert q.waiting() == 1


def test_the_call_directory_forgets_every_call_of_erased_customers(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    directory = SQLiteCallDirectory(path)
    directory.remember("CA1", "11111111-1111-1111-1111-111111111111")
    directory.remember("CA2", "11111111-1111-1111-1111-111111111111")
    directory.remember("CA3", "22222222-2222-2222-2222-222222222222")
    assert directory.forget_customers(["11111111-1111-1111-1111-111111111111"]) == 2
    assert directory.customer_of("CA1") is None and directory.customer_of("CA2") is None
    assert str(directory.customer_of("CA3")) == "22222222-2222-2222-2222-222222222222"
    directory.close()
    again = SQLiteCallDirectory(path)
    assert again.customer_of("CA1") is None
    assert again.forget_customers([]) == 0
    again.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("calls.db*"))
    assert b"11111111-1111" not in stored
