"""Authenticated encryption of sensitive values at rest, with key ids, and keyed hashes for exact lookups.

Written on `cryptography`'s Fernet (AES-128-CBC with HMAC-SHA256) rather than a Django field library:
django-fernet-encrypted-fields, the maintained one, derives its keys from SECRET_KEY and a salt and tries every
key in turn, so a stored value does not say which key sealed it; rotation could not tell what is left to
re-encrypt, nor report a value whose key was removed.

A sealed value is text: `enc:v1:<key id>:<Fernet token>`. The key set comes from settings.FIELD_ENCRYPTION_KEYS
(a list of "<key id>:<urlsafe base64 Fernet key>", the first one current; workflow_project/settings.py reads it
from the environment or a key file, never from the database). Sealing uses the current key; opening uses the key
the value names. A value under a key id the set no longer holds, or that fails authentication, is "unreadable":
opening it raises UnreadableValue, and the display helpers show UNREADABLE_MARKER instead of failing.

Keyed hashes (HMAC-SHA256, key derived from a key of the set) let a column be matched exactly without being
readable: `<key id>:<hex>`; a lookup asks for the hash under every key of the set, so rows not yet rotated match.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

PREFIX = "enc:v1:"
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,32}")
SEALED_PATTERN = re.compile(r"enc:v1:([A-Za-z0-9_.-]{1,32}):([A-Za-z0-9_=-]+)")
# What pages, API and admin show in place of a value they cannot open (its key was removed from the key set).
UNREADABLE_MARKER = "[unreadable: encrypted under a key that is not configured]"
HASH_CONTEXT = b"onecms keyed lookup hash v1"


class UnreadableValue(Exception):
    """A sealed value that cannot be opened: its key id is not in the key set, or it fails authentication."""

    def __init__(self, detail: str, *, key_id: str | None):
        super().__init__(detail)
        self.detail = detail
        self.key_id = key_id


@dataclass(frozen=True)
class KeySet:
    """The configured keys, current first: key id -> Fernet, and key id -> HMAC key for lookup hashes."""

    current_id: str
    fernets: dict[str, Fernet]
    hash_keys: dict[str, bytes]

    @property
    def key_ids(self) -> list[str]:
        return list(self.fernets)


def parse_key_set(entries: list[str]) -> KeySet:
    """Build the key set from "<key id>:<key>" entries; ImproperlyConfigured naming what is wrong (never a key)."""
    if not entries:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: at least one key is needed")
    fernets: dict[str, Fernet] = {}
    hash_keys: dict[str, bytes] = {}
    for position, entry in enumerate(entries, start=1):
        key_id, separator, key = entry.strip().partition(":")
        if not separator or not KEY_ID_PATTERN.fullmatch(key_id):
            raise ImproperlyConfigured(
                f"field encryption key {position} must look like '<key id>:<base64 key>' with a key id of "
                "letters, digits, '_', '.' or '-' (at most 32)"
            )
        if key_id in fernets:
            raise ImproperlyConfigured(f"field encryption key id {key_id!r} is given twice")
        try:
            raw = base64.urlsafe_b64decode(key.strip().encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raw = b""
        if len(raw) != 32:
            raise ImproperlyConfigured(
                f"field encryption key {key_id!r} is not a Fernet key (32 bytes, urlsafe base64): "
                "make one with `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            )
        fernets[key_id] = Fernet(base64.urlsafe_b64encode(raw))
        hash_keys[key_id] = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HASH_CONTEXT).derive(raw)
    return KeySet(current_id=next(iter(fernets)), fernets=fernets, hash_keys=hash_keys)


@lru_cache(maxsize=1)
def key_set() -> KeySet:
    return parse_key_set(list(settings.FIELD_ENCRYPTION_KEYS))


def _reset_key_set(*, setting, **kwargs) -> None:
    if setting == "FIELD_ENCRYPTION_KEYS":
        key_set.cache_clear()


setting_changed.connect(_reset_key_set)


def generate_key_entry(key_id: str) -> str:
    """A new "<key id>:<key>" entry for the key set (operators: prepend it, then run rotate_encryption_keys)."""
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise ValueError("a key id is 1-32 letters, digits, '_', '.' or '-'")
    return f"{key_id}:{Fernet.generate_key().decode('ascii')}"


# --- sealing and opening ------------------------------------------------------------------------------------------


def is_sealed(value) -> bool:
    return isinstance(value, str) and SEALED_PATTERN.fullmatch(value) is not None


def sealed_key_id(value: str) -> str | None:
    """The key id a sealed value names; None for anything else (plaintext)."""
    match = SEALED_PATTERN.fullmatch(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def seal(plaintext: str) -> str:
    """Encrypt text under the current key."""
    if not isinstance(plaintext, str):
        raise TypeError(f"only text is sealed, not {type(plaintext).__name__}")
    keys = key_set()
    token = keys.fernets[keys.current_id].encrypt(plaintext.encode("utf-8")).decode("ascii")
    return f"{PREFIX}{keys.current_id}:{token}"


def open_sealed(value: str) -> str:
    """The plaintext of a sealed value; UnreadableValue when its key is gone or it was tampered with."""
    match = SEALED_PATTERN.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise UnreadableValue("not a sealed value", key_id=None)
    key_id, token = match.groups()
    fernet = key_set().fernets.get(key_id)
    if fernet is None:
        raise UnreadableValue(f"sealed under key {key_id!r}, which is not in the key set", key_id=key_id)
    try:
        return fernet.decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeDecodeError):
        raise UnreadableValue(f"sealed under key {key_id!r} but fails authentication", key_id=key_id) from None


def open_text(value: str) -> str:
    """The plaintext of a stored value: sealed values are opened, anything else (plaintext not yet sealed) is
    returned as it is. UnreadableValue as open_sealed."""
    return open_sealed(value) if is_sealed(value) else value


def reseal(value: str) -> str:
    """The value under the current key (unchanged if it already is). UnreadableValue as open_sealed."""
    if sealed_key_id(value) == key_set().current_id:
        return value
    return seal(open_text(value))


def needs_resealing(value) -> bool:
    """A sealed value whose key is not the current one."""
    key_id = sealed_key_id(value)
    return key_id is not None and key_id != key_set().current_id


# --- sealed values inside JSON ------------------------------------------------------------------------------------


def reveal(data):
    """A copy of JSON data with every sealed string opened, for showing to a user who may read it.

    A value that cannot be opened becomes UNREADABLE_MARKER: a page, API response or admin view shows that the
    field is unreadable instead of failing.
    """
    if isinstance(data, dict):
        return {key: reveal(item) for key, item in data.items()}
    if isinstance(data, list):
        return [reveal(item) for item in data]
    if is_sealed(data):
        try:
            return open_sealed(data)
        except UnreadableValue:
            return UNREADABLE_MARKER
    return data


def sealed_strings(data):
    """Every sealed string in JSON data, at any depth."""
    if isinstance(data, dict):
        for item in data.values():
            yield from sealed_strings(item)
    elif isinstance(data, list):
        for item in data:
            yield from sealed_strings(item)
    elif is_sealed(data):
        yield data


def resealed(data):
    """A copy of JSON data with every sealed string under the current key. UnreadableValue as open_sealed."""
    if isinstance(data, dict):
        return {key: resealed(item) for key, item in data.items()}
    if isinstance(data, list):
        return [resealed(item) for item in data]
    if is_sealed(data):
        return reseal(data)
    return data


# --- keyed hashes for exact lookups ---------------------------------------------------------------------------------


def normalise_email(value: str) -> str:
    return value.strip().casefold()


def normalise_name(value: str) -> str:
    """Case, accents, punctuation and spacing do not count: "  José  O'Brien" and "jose obrien" are one name."""
    decomposed = unicodedata.normalize("NFKD", value)
    letters = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    kept = "".join(ch if ch.isalnum() or ch.isspace() else "" for ch in letters.casefold())
    return " ".join(kept.split())


def keyed_hash(normalised: str, *, key_id: str | None = None) -> str:
    """`<key id>:<hex HMAC-SHA256>` of an already normalised value, under the current key unless told."""
    keys = key_set()
    key_id = key_id or keys.current_id
    digest = hmac.new(keys.hash_keys[key_id], normalised.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{key_id}:{digest}"


def keyed_hash_candidates(normalised: str) -> list[str]:
    """The value's hash under every key of the set: what an exact lookup compares a hash column with."""
    return [keyed_hash(normalised, key_id=key_id) for key_id in key_set().key_ids]


def hash_key_id(value) -> str | None:
    if not isinstance(value, str) or ":" not in value:
        return None
    return value.split(":", 1)[0]
