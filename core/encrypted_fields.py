"""Model fields that store their values sealed (core/encryption.py) and refuse to be searched.

- EncryptedTextField, EncryptedCharField, EncryptedEmailField, EncryptedDateField: the whole value is sealed into a
  `text` column (but for blank and the field's `clear_values`); the model attribute holds the plaintext. Reading tolerates plaintext (rows written before the
  field was encrypted) and a value that cannot be opened, which becomes an Unreadable: text showing
  UNREADABLE_MARKER that, saved back, writes the stored value unchanged.
- EncryptedKeysJSONField: JSON whose values under the named keys (at any depth) are sealed, the rest left clear
  (the allegations' descriptions are sealed, their type and date stay filterable).
- SealedValuesJSONField: JSON that may hold sealed strings put there by a service (sensitive process variables);
  stored and loaded as it is, shown through encryption.reveal.
- KeyedHashField: an HMAC of another field's normalised plaintext, set on save, for exact lookups.

Filtering on an encrypted value cannot work (each sealing is randomised) and would be a way to probe plaintext,
so every lookup but isnull raises EncryptedFieldLookup naming the field; EncryptedKeysJSONField allows the JSON
key lookups on its clear keys. rotate_encryption_keys finds the fields by these classes.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import FieldError
from django.db import models

from . import encryption

ALLOWED_LOOKUPS = frozenset({"isnull"})
JSON_ALLOWED_LOOKUPS = frozenset({"isnull", "has_key", "has_keys", "has_any_keys"})


class EncryptedFieldLookup(FieldError):
    """A query tried to search or filter on an encrypted field."""

    def __init__(self, field: models.Field, lookup: str):
        self.field_name = field.name
        model = getattr(field, "model", None)
        label = f"{model._meta.label}.{field.name}" if model else field.name
        hashes = [
            other.name
            for other in (model._meta.get_fields() if model else [])
            if isinstance(other, KeyedHashField) and other.source == field.name
        ]
        hint = f"; exact matches go through its keyed hash column {hashes[0]}" if hashes else ""
        allowed = (
            "isnull, has_key and lookups through its clear keys" if isinstance(field, models.JSONField) else "isnull"
        )
        super().__init__(
            f"{label} is encrypted: it cannot be searched or filtered ({lookup!r}); only {allowed} is allowed{hint}"
        )


class Unreadable(str):
    """A stored value that could not be opened. Shows as UNREADABLE_MARKER; `stored` keeps what the column holds,
    so saving the row again leaves it as it was (it stays listed by check_integrity until its key is back)."""

    def __new__(cls, stored: str, error: encryption.UnreadableValue):
        text = super().__new__(cls, encryption.UNREADABLE_MARKER)
        text.stored = stored
        text.error = error
        return text


class Sealed(str):
    """A value sealed by this code (rotate_encryption_keys), to be stored as it is. Any other text, even text that
    looks sealed, is sealed on save: a client cannot plant someone else's ciphertext and have it opened for them."""


def is_unreadable(value) -> bool:
    return isinstance(value, Unreadable)


class EncryptedField:
    """Mixin for a field whose whole value is sealed into a text column.

    `clear_values`: values that carry no one's data and are stored as they are (a redaction marker), so SQL can
    still tell a redacted row from the others."""

    encrypted = True

    def __init__(self, *args, clear_values=(), **kwargs):
        self.clear_values = frozenset(clear_values)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.clear_values:
            kwargs["clear_values"] = sorted(self.clear_values)
        return name, path, args, kwargs

    def db_type(self, connection):
        return "text"

    def rel_db_type(self, connection):
        return "text"

    def get_lookup(self, lookup_name):
        if lookup_name not in ALLOWED_LOOKUPS:
            raise EncryptedFieldLookup(self, lookup_name)
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name):
        raise EncryptedFieldLookup(self, lookup_name)

    def text_to_value(self, text: str):
        return text

    def value_to_text(self, value) -> str:
        return str(value)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        try:
            return self.text_to_value(encryption.open_text(value))
        except encryption.UnreadableValue as error:
            return Unreadable(value, error)

    def get_prep_value(self, value):
        if isinstance(value, Unreadable):
            return value.stored
        if isinstance(value, Sealed):
            return str(value)
        value = super().get_prep_value(value)
        if value is None:
            return None
        text = self.value_to_text(value)
        if not text or text in self.clear_values:
            return text  # blank stays blank, a marker stays a marker: nothing to hide
        return encryption.seal(text)

    def get_db_prep_value(self, value, connection, prepared=False):
        return value if prepared else self.get_prep_value(value)


class EncryptedTextField(EncryptedField, models.TextField):
    pass


class EncryptedCharField(EncryptedField, models.CharField):
    """max_length limits the plaintext; the column is text (a sealed value is longer)."""


class EncryptedEmailField(EncryptedField, models.EmailField):
    pass


class EncryptedDateField(EncryptedField, models.DateField):
    def text_to_value(self, text: str):
        return dt.date.fromisoformat(text) if text else None

    def value_to_text(self, value) -> str:
        return value.isoformat()

    def get_prep_value(self, value):
        if isinstance(value, Unreadable | Sealed):
            return EncryptedField.get_prep_value(self, value)
        value = self.to_python(value)
        return None if value is None else encryption.seal(self.value_to_text(value))


def seal_keys(data, keys: frozenset[str]):
    """A copy of JSON data with the text under `keys` sealed (Sealed and Unreadable values kept as stored)."""
    if isinstance(data, dict):
        return {
            key: (_seal_text(item) if key in keys and isinstance(item, str) else seal_keys(item, keys))
            for key, item in data.items()
        }
    if isinstance(data, list):
        return [seal_keys(item, keys) for item in data]
    return data


def _seal_text(value: str):
    if isinstance(value, Unreadable):
        return value.stored
    if isinstance(value, Sealed) or value == "":
        return str(value)
    return encryption.seal(value)


def as_sealed(data):
    """A copy of JSON data with its sealed strings marked Sealed: stored as they are by the fields above."""
    if isinstance(data, dict):
        return {key: as_sealed(item) for key, item in data.items()}
    if isinstance(data, list):
        return [as_sealed(item) for item in data]
    return Sealed(data) if encryption.is_sealed(data) else data


def open_keys(data, keys: frozenset[str]):
    """A copy of JSON data with the sealed values under `keys` opened (Unreadable when they cannot be)."""
    if isinstance(data, dict):
        return {
            key: (_open_text(item) if key in keys and isinstance(item, str) else open_keys(item, keys))
            for key, item in data.items()
        }
    if isinstance(data, list):
        return [open_keys(item, keys) for item in data]
    return data


def _open_text(value: str):
    try:
        return encryption.open_text(value)
    except encryption.UnreadableValue as error:
        return Unreadable(value, error)


class EncryptedKeysJSONField(models.JSONField):
    """JSON whose values under `encrypted_keys` are sealed; lookups through those keys are refused."""

    encrypted = True

    def __init__(self, *args, encrypted_keys=(), **kwargs):
        self.encrypted_keys = frozenset(encrypted_keys)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["encrypted_keys"] = sorted(self.encrypted_keys)
        return name, path, args, kwargs

    def get_lookup(self, lookup_name):
        lookup = super().get_lookup(lookup_name)
        if lookup is not None and lookup_name not in JSON_ALLOWED_LOOKUPS:
            raise EncryptedFieldLookup(self, lookup_name)
        return lookup  # None: Django tries the name as a key (get_transform)

    def get_transform(self, name):
        if name in self.encrypted_keys:
            raise EncryptedFieldLookup(self, name)
        return super().get_transform(name)

    def get_prep_value(self, value):
        return super().get_prep_value(seal_keys(value, self.encrypted_keys))

    def from_db_value(self, value, expression, connection):
        return open_keys(super().from_db_value(value, expression, connection), self.encrypted_keys)


class SealedValuesJSONField(models.JSONField):
    """JSON that may hold sealed strings (sensitive form values): stored and loaded as is, never opened here.

    Pages, API and admin show it through encryption.reveal. Not searchable through its values: the sealed ones
    never match, and which keys hold them is the workflow model's business.
    """

    holds_sealed_values = True


class KeyedHashField(models.CharField):
    """`<key id>:<HMAC-SHA256>` of `source`'s normalised plaintext, computed on save; "" when the source is blank.

    Query it with keyed_hash_filter (every key of the set), never with a plaintext value.
    """

    def __init__(self, *args, source: str = "", normaliser=None, **kwargs):
        self.source = source
        self.normaliser = normaliser
        kwargs.setdefault("max_length", 100)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        kwargs["normaliser"] = self.normaliser
        for key, default in (("max_length", 100), ("blank", True), ("editable", False), ("default", "")):
            if kwargs.get(key) == default:
                kwargs.pop(key)
        return name, path, args, kwargs

    def hash_of(self, plaintext) -> str:
        if plaintext in (None, "") or isinstance(plaintext, Unreadable):
            return ""
        normalised = self.normaliser(str(plaintext)) if self.normaliser else str(plaintext)
        return encryption.keyed_hash(normalised) if normalised else ""

    def pre_save(self, model_instance, add):
        source = getattr(model_instance, self.source)
        if isinstance(source, Unreadable):
            return getattr(model_instance, self.attname)  # cannot recompute: keep the hash it has
        value = self.hash_of(source)
        setattr(model_instance, self.attname, value)
        return value


def keyed_hash_filter(model, hash_field: str, plaintext: str) -> models.Q:
    """Rows whose `hash_field` matches `plaintext` under any key of the set (rows not yet rotated match too)."""
    field = model._meta.get_field(hash_field)
    normalised = field.normaliser(plaintext) if field.normaliser else plaintext
    if not normalised:
        return models.Q(pk__in=[])
    return models.Q(**{f"{hash_field}__in": encryption.keyed_hash_candidates(normalised)})
