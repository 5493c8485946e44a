"""Key rotation for sealed values (core/encryption.py): re-encrypt under the current key, and find what cannot be.

The columns are found from the models, by field class (core/encrypted_fields.py): encrypted text fields, JSON
with encrypted keys, JSON that may hold sealed values, and keyed hash columns (recomputed when their key is not
the current one). Rows are read in primary-key order, a batch at a time (keyset: `pk > last`, no OFFSET); a batch
with work locks just the rows it changes, reads them again under the lock and writes them in one short
transaction, so a concurrent change is never overwritten and an interrupted run loses at most one batch. A run
skips what is already under the current key, so running it again carries on where the last one stopped.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.apps import apps
from django.db import connection, models, transaction
from django.db.models.functions import Cast

from core.db_roles import maintenance_role

from . import encryption
from .encrypted_fields import EncryptedField, EncryptedKeysJSONField, KeyedHashField, Sealed, as_sealed, seal_keys
from .locks import rows_for_update

DEFAULT_BATCH_SIZE = 500
MAX_REPORTED_UNREADABLE = 200


@dataclass(frozen=True)
class UnreadableCell:
    """A stored value no configured key opens."""

    table: str  # model label, e.g. cases.Case
    pk: object
    field: str
    detail: str

    def __str__(self) -> str:
        return f"{self.table} {self.pk} {self.field}: {self.detail}"


@dataclass
class RotationReport:
    rows_scanned: int = 0
    rows_changed: int = 0
    values_changed: Counter = field(default_factory=Counter)  # "cases.Case.description" -> count
    unreadable: list[UnreadableCell] = field(default_factory=list)
    unreadable_count: int = 0

    def note_unreadable(self, cell: UnreadableCell) -> None:
        self.unreadable_count += 1
        if len(self.unreadable) < MAX_REPORTED_UNREADABLE:
            self.unreadable.append(cell)


@dataclass(frozen=True)
class EncryptedTable:
    model: type[models.Model]
    fields: list[models.Field]  # whole-value, keyed-JSON and sealed-values JSON fields
    hashes: list[KeyedHashField]

    @property
    def label(self) -> str:
        return self.model._meta.label


def encrypted_tables() -> list[EncryptedTable]:
    """Every model with a column that holds sealed values or keyed hashes."""
    tables = []
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        fields = [
            f
            for f in model._meta.concrete_fields
            if getattr(f, "encrypted", False) or getattr(f, "holds_sealed_values", False)
        ]
        hashes = [f for f in model._meta.concrete_fields if isinstance(f, KeyedHashField)]
        if fields or hashes:
            tables.append(EncryptedTable(model=model, fields=fields, hashes=hashes))
    return tables


# --- reading stored values as they are ---------------------------------------------------------------------------


def _raw_name(f: models.Field) -> str:
    return f"_stored_{f.attname}"


def _stored_rows(table: EncryptedTable, queryset) -> list[dict]:
    """The rows' stored (sealed) values, read as text so that no field opens them on the way."""
    raw = {_raw_name(f): Cast(f.attname, output_field=models.TextField()) for f in [*table.fields, *table.hashes]}
    rows = []
    for row in queryset.annotate(**raw).values("pk", *raw):
        stored = {"pk": row["pk"]}
        for f in [*table.fields, *table.hashes]:
            value = row[_raw_name(f)]
            if value is not None and isinstance(f, models.JSONField):
                value = json.loads(value)  # dicts keep the stored key order (the engine state relies on it)
            stored[f.attname] = value
        rows.append(stored)
    return rows


# --- what a row needs ----------------------------------------------------------------------------------------------


def _rotated_value(f: models.Field, value, *, encrypt_plaintext: bool):
    """The field's stored value under the current key, or the same object when nothing changes.
    UnreadableValue when a sealed value cannot be opened."""
    if value is None:
        return value
    if isinstance(f, EncryptedField):
        if encryption.is_sealed(value):
            return Sealed(encryption.reseal(value)) if encryption.needs_resealing(value) else value
        wanted = encrypt_plaintext and value != "" and value not in f.clear_values
        return Sealed(encryption.seal(value)) if wanted else value
    if not any(encryption.needs_resealing(s) for s in encryption.sealed_strings(value)):
        rotated = value
    else:
        rotated = as_sealed(encryption.resealed(value))
    if encrypt_plaintext and isinstance(f, EncryptedKeysJSONField):
        sealed = seal_keys(as_sealed(rotated), f.encrypted_keys)
        if sealed != rotated:
            rotated = as_sealed(sealed)
    return rotated


def _plaintext_of(stored) -> str | None:
    """The plaintext a hash is computed from. UnreadableValue when sealed under a missing key."""
    if stored in (None, ""):
        return stored
    return encryption.open_text(stored)


def _row_changes(table: EncryptedTable, row: dict, report: RotationReport, *, encrypt_plaintext: bool) -> dict:
    """{attname: new stored value} for what the row needs; unreadable values are reported and left alone."""
    changes = {}
    for f in table.fields:
        try:
            rotated = _rotated_value(f, row[f.attname], encrypt_plaintext=encrypt_plaintext)
        except encryption.UnreadableValue as error:
            report.note_unreadable(UnreadableCell(table.label, row["pk"], f.name, error.detail))
            continue
        if rotated is not row[f.attname]:
            changes[f.attname] = rotated
    current = encryption.key_set().current_id
    for f in table.hashes:
        stored_hash = row[f.attname]
        if not stored_hash or encryption.hash_key_id(stored_hash) == current:
            continue
        try:
            plaintext = _plaintext_of(row[table.model._meta.get_field(f.source).attname])
        except encryption.UnreadableValue:
            continue  # reported with its source field
        changes[f.attname] = f.hash_of(plaintext)
    return changes


# --- the runs ------------------------------------------------------------------------------------------------------


def _batches(table: EncryptedTable, batch_size: int) -> Iterator[list[dict]]:
    manager = table.model._base_manager
    last = None
    while True:
        queryset = manager.order_by("pk")
        if last is not None:
            queryset = queryset.filter(pk__gt=last)
        rows = _stored_rows(table, queryset[:batch_size])
        if not rows:
            return
        yield rows
        last = rows[-1]["pk"]


def _write(table: EncryptedTable, pks: list, report: RotationReport, *, encrypt_plaintext: bool) -> None:
    """Lock the rows, read them again and write what they still need, in one transaction. Some of the tables are
    append-only history: re-sealing a value under the current key keeps what it says, and only the maintenance
    role may write it (run the command with the maintenance role's DATABASE_URL)."""
    with transaction.atomic(), maintenance_role():
        locked = rows_for_update(table.model._base_manager.filter(pk__in=pks))
        for row in _stored_rows(table, locked):
            changes = _row_changes(table, row, RotationReport(), encrypt_plaintext=encrypt_plaintext)
            if not changes:
                continue
            # Values marked Sealed are stored as they are.
            table.model._base_manager.filter(pk=row["pk"]).update(
                **{table.model._meta.get_field(name).name: value for name, value in changes.items()}
            )
            report.rows_changed += 1
            for name in changes:
                report.values_changed[f"{table.label}.{name}"] += 1


def rotate_encryption_keys(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    encrypt_plaintext: bool = False,
    progress: Callable[[EncryptedTable, int], Callable[[int], None]] | None = None,
) -> RotationReport:
    """Re-encrypt every sealed value (and keyed hash) not under the current key; with `encrypt_plaintext`, also
    seal plaintext found in encrypted columns (rows written before a field was encrypted).

    `dry_run` counts what would change and writes nothing. `progress(table, total_rows)` may return a callable
    told how many rows each batch read. Values no key opens are reported, never changed: put their key back in
    the key set and run again.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = RotationReport()
    for table in encrypted_tables():
        advance = progress(table, table.model._base_manager.count()) if progress else None
        for rows in _batches(table, batch_size):
            report.rows_scanned += len(rows)
            pending = []
            for row in rows:
                changes = _row_changes(table, row, report, encrypt_plaintext=encrypt_plaintext)
                if changes:
                    pending.append(row["pk"])
                    if dry_run:
                        report.rows_changed += 1
                        for name in changes:
                            report.values_changed[f"{table.label}.{name}"] += 1
            if pending and not dry_run:
                _write(table, pending, report, encrypt_plaintext=encrypt_plaintext)
            if advance:
                advance(len(rows))
    return report


def unreadable_encrypted_values(*, limit: int = MAX_REPORTED_UNREADABLE) -> list[str]:
    """Stored values sealed under a key id the key set does not hold, and keyed hashes under one (lookups miss
    them): one line each, at most `limit`. Found in SQL by key id, without decrypting anything."""
    key_ids = encryption.key_set().key_ids
    found: list[str] = []
    with connection.cursor() as cursor:
        for table in encrypted_tables():
            db_table = connection.ops.quote_name(table.model._meta.db_table)
            pk_column = connection.ops.quote_name(table.model._meta.pk.column)
            for f in table.fields:
                column = connection.ops.quote_name(f.column)
                cursor.execute(
                    f"""
                    SELECT DISTINCT t.{pk_column}::text, m[1]
                      FROM {db_table} t, regexp_matches(t.{column}::text, %s, 'g') AS m
                     WHERE t.{column}::text LIKE %s AND NOT (m[1] = ANY(%s))
                     ORDER BY 1 LIMIT %s
                    """,
                    [r"enc:v1:([A-Za-z0-9_.-]{1,32}):", f"%{encryption.PREFIX}%", key_ids, limit - len(found)],
                )
                found += [
                    f"{table.label} {pk} {f.name}: sealed under key {key_id!r}, which is not in the key set"
                    for pk, key_id in cursor.fetchall()
                ]
            for f in table.hashes:
                column = connection.ops.quote_name(f.column)
                cursor.execute(
                    f"""
                    SELECT t.{pk_column}::text, split_part(t.{column}, ':', 1) FROM {db_table} t
                     WHERE t.{column} <> '' AND NOT (split_part(t.{column}, ':', 1) = ANY(%s))
                     ORDER BY 1 LIMIT %s
                    """,
                    [key_ids, limit - len(found)],
                )
                found += [
                    f"{table.label} {pk} {f.name}: keyed hash under key {key_id!r}, which is not in the key set"
                    for pk, key_id in cursor.fetchall()
                ]
            if len(found) >= limit:
                return found[:limit]
    return found
