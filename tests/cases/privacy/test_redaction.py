"""How values are rewritten: identifiers as whole tokens, free text blanked, structure and key order kept."""

import pytest

from cases.privacy.redaction import (
    Identity,
    personal_variable_names,
    redact_allegations,
    redact_engine_state,
    redact_routing_history,
)

ALICE = Identity.of(
    pseudonym="erased-user-7", identifiers=["alice", "alice@example.org", "Alice Adams", "Alice", "Adams", "", "A"]
)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("user:alice", "user:erased-user-7"),
        ("handed to alice.", "handed to erased-user-7."),
        ("ALICE's desk", "erased-user-7's desk"),
        ("mail alice@example.org today", "mail erased-user-7 today"),
        ("Alice Adams said", "erased-user-7 said"),
        ("malice", "malice"),
        ("alice.smith", "alice.smith"),
        ("intake-alice", "intake-alice"),
        ("alice-bob", "alice-bob"),
    ],
)
def test_an_identifier_is_replaced_only_where_it_stands_as_a_whole_token(text, expected):
    assert ALICE.scrub_text(text) == expected


def test_identifiers_too_short_to_be_names_are_not_searched_for():
    assert ALICE.identifiers == ("alice@example.org", "Alice Adams", "Adams", "alice")


def test_json_values_are_scrubbed_at_any_depth_and_keys_stay():
    value = {"by": "alice", "notes": ["seen by Alice Adams"], "adams": {"n": "Adams"}}

    assert ALICE.scrub_json(value) == {
        "by": "erased-user-7",
        "notes": ["seen by erased-user-7"],
        "adams": {"n": "erased-user-7"},
    }


def test_a_name_with_a_quote_is_found_in_the_text_of_a_json_column():
    identity = Identity.of(pseudonym="p", identifiers=['Ann "Nan" Lee'])

    assert '%Ann \\\\"Nan\\\\" Lee%' in identity.like_patterns()


def test_free_text_and_marked_form_fields_are_personal_enums_dates_and_numbers_are_not():
    forms = [
        [{"id": "notes", "type": "text"}, {"id": "via", "type": "enum"}, {"id": "on", "type": "date"}],
        [
            {"id": "name", "type": "string"},
            {"id": "loss", "type": "long"},
            {"id": "dob", "type": "date", "sensitive": True},
        ],
    ]

    assert personal_variable_names(forms) == {"title", "notes", "name", "dob"}


def test_the_engine_state_keeps_its_key_order_and_loses_only_the_named_variables():
    state = {
        "data": {"z": "keep", "notes": "secret", "a": 1},
        "tasks": {"t1": {"id": "t1", "data": {"notes": "secret"}, "delta": {"updates": {"notes": "secret", "n": 2}}}},
    }

    redacted = redact_engine_state(state, {"notes"})

    assert list(redacted["data"]) == ["z", "notes", "a"] and redacted["data"]["notes"] == ""
    assert redacted["tasks"]["t1"]["data"] == {"notes": ""} and redacted["tasks"]["t1"]["delta"]["updates"] == {
        "notes": "",
        "n": 2,
    }
    assert state["data"]["notes"] == "secret"  # the input is left alone


def test_allegations_keep_type_and_date_and_hops_keep_queues_times_and_actors():
    assert redact_allegations([{"type": "FRAUD", "description": "x", "date": "2026-01-01"}]) == [
        {"type": "FRAUD", "description": "", "date": "2026-01-01"}
    ]
    hop = {"from_queue": None, "to_queue": "intake", "at": "2026-01-01T00:00:00+00:00", "by": "alice", "reason": "x"}
    assert redact_routing_history([hop]) == [{**hop, "reason": ""}]
