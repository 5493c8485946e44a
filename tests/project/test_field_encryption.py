"""core/encryption.py: the key set, sealing with a key id, opening, unreadable values and keyed hashes; and the
settings that load the keys from the environment or a key file."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from core import encryption

ROOT = Path(__file__).resolve().parents[2]


def key(key_id: str) -> str:
    return encryption.generate_key_entry(key_id)


OLD, NEW = key("k-old"), key("k-new")


def test_a_sealed_value_names_its_key_and_opens_to_the_plaintext():
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        sealed = encryption.seal("Invoices were altered")
        assert sealed.startswith("enc:v1:k-new:")
        assert "Invoices" not in sealed
        assert encryption.sealed_key_id(sealed) == "k-new"
        assert encryption.open_sealed(sealed) == "Invoices were altered"


def test_sealing_the_same_text_twice_gives_different_values():
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        assert encryption.seal("same") != encryption.seal("same")


def test_a_value_under_an_older_key_of_the_set_still_opens():
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        sealed = encryption.seal("kept")
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        assert encryption.open_sealed(sealed) == "kept"
        assert encryption.needs_resealing(sealed)
        assert encryption.sealed_key_id(encryption.reseal(sealed)) == "k-new"


def test_a_value_under_a_removed_key_is_unreadable_naming_the_key():
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        sealed = encryption.seal("gone")
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        with pytest.raises(encryption.UnreadableValue) as raised:
            encryption.open_sealed(sealed)
        assert raised.value.key_id == "k-old"
        assert encryption.reveal({"notes": sealed, "n": 1}) == {"notes": encryption.UNREADABLE_MARKER, "n": 1}


def test_a_tampered_value_fails_authentication():
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        sealed = encryption.seal("authentic")
        prefix, token = sealed.rsplit(":", 1)
        flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
        with pytest.raises(encryption.UnreadableValue, match="fails authentication"):
            encryption.open_sealed(f"{prefix}:{flipped}")


def test_a_key_id_reused_for_another_key_is_unreadable_not_garbage():
    with override_settings(FIELD_ENCRYPTION_KEYS=[key("k1")]):
        sealed = encryption.seal("first key")
    with override_settings(FIELD_ENCRYPTION_KEYS=[key("k1")]):
        with pytest.raises(encryption.UnreadableValue):
            encryption.open_sealed(sealed)


def test_reveal_opens_sealed_strings_at_any_depth_and_leaves_the_rest():
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        data = {"a": [encryption.seal("x"), {"b": encryption.seal("y")}], "c": "plain", "d": 3}
        assert encryption.reveal(data) == {"a": ["x", {"b": "y"}], "c": "plain", "d": 3}


@pytest.mark.parametrize(
    "entries, message",
    [
        ([], "empty"),
        (["no-separator"], "must look like"),
        (["bad id!:" + NEW.split(":", 1)[1]], "must look like"),
        (["k1:not-base64-of-32-bytes"], "not a Fernet key"),
        ([NEW, NEW], "given twice"),
    ],
)
def test_a_malformed_key_set_is_refused_without_showing_a_key(entries, message):
    with pytest.raises(ImproperlyConfigured, match=message) as raised:
        encryption.parse_key_set(entries)
    assert NEW.split(":", 1)[1] not in str(raised.value)


def test_keyed_hashes_match_under_every_key_of_the_set_and_hide_the_value():
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        old_hash = encryption.keyed_hash(encryption.normalise_email(" Morgan.Hale@Example.ORG "))
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        candidates = encryption.keyed_hash_candidates("morgan.hale@example.org")
        assert old_hash in candidates
        assert candidates[0].startswith("k-new:")
        assert "morgan" not in "".join(candidates)


def test_names_are_normalised_for_exact_lookup():
    assert encryption.normalise_name("  José   O'Brien ") == encryption.normalise_name("jose obrien")
    assert encryption.normalise_name("Jose Obrien") != encryption.normalise_name("Jose Obrian")


def settings_keys(env: dict) -> subprocess.CompletedProcess:
    script = "from django.conf import settings; print(settings.FIELD_ENCRYPTION_KEYS)"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FIELD_ENCRYPTION")}
    environment.update(env, DJANGO_SETTINGS_MODULE="workflow_project.settings")
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {script}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_configured_keys_a_key_file_is_generated_once_under_var(tmp_path):
    first = settings_keys({"WORKFLOW_VAR_DIR": str(tmp_path)})
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "field_encryption_keys"
    assert key_file.stat().st_mode & 0o777 == 0o600
    again = settings_keys({"WORKFLOW_VAR_DIR": str(tmp_path)})
    assert again.stdout == first.stdout
    (entry,) = ast.literal_eval(first.stdout)  # a list of one "<key id>:<key>" string
    encryption.parse_key_set([entry])


def test_keys_come_from_the_environment_or_a_key_file_current_first(tmp_path):
    listed = settings_keys({"FIELD_ENCRYPTION_KEYS": f"{NEW}, {OLD}", "WORKFLOW_VAR_DIR": str(tmp_path)})
    assert ast.literal_eval(listed.stdout) == [NEW, OLD]
    key_file = tmp_path / "keys"
    key_file.write_text(f"# current first\n{NEW}\n{OLD}  # retiring\n")
    from_file = settings_keys({"FIELD_ENCRYPTION_KEY_FILE": str(key_file), "WORKFLOW_VAR_DIR": str(tmp_path)})
    assert ast.literal_eval(from_file.stdout) == [NEW, OLD]
    assert not (tmp_path / "field_encryption_keys").exists()


def test_setting_both_key_sources_is_refused(tmp_path):
    both = settings_keys(
        {"FIELD_ENCRYPTION_KEYS": NEW, "FIELD_ENCRYPTION_KEY_FILE": str(tmp_path), "WORKFLOW_VAR_DIR": str(tmp_path)}
    )
    assert both.returncode != 0
    assert "not both" in both.stderr
