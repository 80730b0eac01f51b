"""Key records as table rows: the conversion the SQLite and PostgreSQL key stores share.

Both keep one row per record with the same columns, in the order of
:data:`COLUMNS`; the public and private JWKs are JSON text written by the
strict encoder and read back by the strict parser, anything else is stored
as it is. A row that does not read back is a :class:`~jwtward.keys.records.StoreError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from jwtward.codecs import dumps, loads_object
from jwtward.errors import DecodeError
from jwtward.keys.records import KeyRecord, StoreConflict, StoreError
from jwtward.keys.sealing import Sealer

__all__ = [
    "COLUMNS",
    "JSON_COLUMNS",
    "check_version",
    "header_text",
    "parse_json",
    "row_values",
    "sealed_rows",
    "stored_record",
]

# What the stores write is small; the bound keeps a corrupt row from making
# a read parse without end.
_MAX_JSON: Final = 1 << 20

COLUMNS: Final = (
    "kid",
    "state",
    "created_at",
    "activates_at",
    "retires_at",
    "expires_at",
    "revoked_at",
    "public",
    "sealed",
    "private",
)
"""The stored record's fields, in column order."""

JSON_COLUMNS: Final = frozenset({"public", "private"})
"""The fields kept as JSON text."""


def parse_json(text: object, what: str) -> dict[str, Any]:
    """The JSON object in ``text``; StoreError naming ``what`` if it is not one."""
    if not isinstance(text, str):
        raise StoreError(f"key store {what} is not JSON text")
    try:
        return loads_object(text, max_size=_MAX_JSON)
    except DecodeError as exc:
        raise StoreError(f"key store {what} is corrupt: {exc}") from None


def row_values(stored: Mapping[str, Any]) -> tuple[Any, ...]:
    """The column values of a sealed record, in :data:`COLUMNS` order."""
    return tuple(
        None
        if stored[name] is None
        else dumps(stored[name]).decode("utf-8")
        if name in JSON_COLUMNS
        else stored[name]
        for name in COLUMNS
    )


def stored_record(row: Sequence[Any]) -> dict[str, Any]:
    """The sealed record in a row of :data:`COLUMNS` values."""
    stored = dict(zip(COLUMNS, row, strict=True))
    for name in JSON_COLUMNS:
        if stored[name] is not None:
            stored[name] = parse_json(stored[name], "record")
    return stored


def check_version(current: int, expected_version: int) -> None:
    """StoreConflict unless the store is still at the version the saver loaded."""
    if current != expected_version:
        raise StoreConflict(f"key store is at version {current}, not {expected_version}: reload")


def sealed_rows(sealer: Sealer, records: Sequence[KeyRecord]) -> list[tuple[Any, ...]]:
    """The rows a save writes: each record's position, then its sealed columns."""
    return [
        (position, *row_values(sealer.seal_record(record)))
        for position, record in enumerate(records)
    ]


def header_text(sealer: Sealer) -> str:
    """The sealing header as the JSON text the meta row keeps."""
    return dumps(sealer.header).decode("utf-8")
