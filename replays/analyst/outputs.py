"""Where a replay's rows go: Parquet, CSV or SQLite, chosen by the output's suffix.

Rows arrive in log order (``position``, ``seq`` first) with values already
normalised by the spec (dates and timestamps as ISO text, decimals as exact
text), so every format holds the same values; Parquet gets native date,
timestamp (UTC, microseconds) and boolean types back.
"""

from __future__ import annotations

import csv
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

SUFFIXES = (".parquet", ".csv", ".sqlite")
PARQUET_GROUP = 65_536  # rows per Parquet row group (memory stays bounded by it)
_SQLITE = {"text": "TEXT", "integer": "INTEGER", "real": "REAL", "boolean": "BOOLEAN",
           "date": "TEXT", "timestamp": "TEXT", "decimal": "TEXT"}


class UnknownOutputError(ValueError):
    """Raised when the output file's suffix names no supported format."""


class Output(ABC):
    @abstractmethod
    def write(self, rows: Sequence[tuple[Any, ...]]) -> None: ...

    @abstractmethod
    def close(self) -> None:
        """Finish the file (it is renamed into place by the caller)."""

    @abstractmethod
    def abort(self) -> None:
        """Stop writing; the caller deletes the partial file."""


def output_for(out: Path, tmp: Path, table: str,
               columns: Sequence[tuple[str, str]]) -> Output:
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        return _Parquet(tmp, columns)
    if suffix == ".csv":
        return _Csv(tmp, columns)
    if suffix == ".sqlite":
        return _Sqlite(tmp, table, columns)
    raise UnknownOutputError(f"{out}: write .parquet, .csv or .sqlite")


def check_suffix(out: Path) -> None:
    if out.suffix.lower() not in SUFFIXES:
        raise UnknownOutputError(f"{out}: the output must end in .parquet, .csv or .sqlite")


class _Csv(Output):
    def __init__(self, path: Path, columns: Sequence[tuple[str, str]]) -> None:
        self.file = path.open("w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.file)
        self.writer.writerow(["position", "seq", *(c for c, _ in columns)])

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.writer.writerows(
            [["" if v is None else ("true" if v is True else "false" if v is False else v)
              for v in row] for row in rows])

    def close(self) -> None:
        self.file.close()

    def abort(self) -> None:
        self.file.close()


class _Sqlite(Output):
    def __init__(self, path: Path, table: str, columns: Sequence[tuple[str, str]]) -> None:
        path.unlink(missing_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        cols = ", ".join(f"{c} {_SQLITE[k]}" for c, k in columns)
        self.conn.execute(f"CREATE TABLE {table} (position INTEGER NOT NULL, "
                          f"seq INTEGER NOT NULL, {cols}, PRIMARY KEY (position, seq))")
        self.insert = (f"INSERT INTO {table} VALUES "
                       f"({','.join('?' * (len(columns) + 2))})")
        self.conn.execute("BEGIN")

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.conn.executemany(self.insert, rows)

    def close(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()

    def abort(self) -> None:
        self.conn.close()


class _Parquet(Output):
    def __init__(self, path: Path, columns: Sequence[tuple[str, str]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        types = {"text": pa.string(), "integer": pa.int64(), "real": pa.float64(),
                 "boolean": pa.bool_(), "date": pa.date32(),
                 "timestamp": pa.timestamp("us", tz="UTC"), "decimal": pa.string()}
        self.kinds = ["integer", "integer", *(k for _, k in columns)]
        self.schema = pa.schema([("position", pa.int64()), ("seq", pa.int32()),
                                 *((c, types[k]) for c, k in columns)])
        self.writer = pq.ParquetWriter(path, self.schema)
        self.buffer: list[tuple[Any, ...]] = []

    def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.buffer.extend(rows)
        if len(self.buffer) >= PARQUET_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        cols = list(zip(*self.buffer, strict=True))
        arrays = [self.pa.array([_native(kind, v) for v in col], type=field.type)
                  for kind, col, field in zip(self.kinds, cols, self.schema, strict=True)]
        self.writer.write_table(self.pa.Table.from_arrays(arrays, schema=self.schema))
        self.buffer = []

    def close(self) -> None:
        self._flush()
        self.writer.close()

    def abort(self) -> None:
        self.buffer = []
        self.writer.close()


def _native(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "timestamp":
        return datetime.fromisoformat(value)
    return value
