"""The invariants of cases, checked after those of tasks and queues (tasks/sla/maintenance.py): `check_integrity`."""

from __future__ import annotations

from core.encryption import keyed_hash_candidates, normalise_name
from tasks.sla.maintenance import INTEGRITY_CHECKS, IntegrityReport, check_integrity

from .privacy.erasure import USER_PSEUDONYM
from .privacy.redaction import REDACTED_TITLE
from .privacy.retention import REDACTED_EVENT

# A user erased by cases/privacy/erasure.py: named by the pseudonym built from their id.
ERASED_USERNAME_SQL = "'" + USER_PSEUDONYM.format(id="") + "' || id"

CASE_INTEGRITY_CHECKS = [
    (
        "case deleted by retention is still there",
        """
        SELECT 'case ' || t.case_number FROM onecms.case_tombstones t
         WHERE EXISTS (SELECT 1 FROM onecms.cases c WHERE c.case_id = t.case_id)
            OR EXISTS (SELECT 1 FROM onecms.cases c WHERE c.case_number = t.case_number)
        """,
    ),
    (
        "redacted case still holds free text",
        f"""
        SELECT 'case ' || c.case_number FROM onecms.cases c
         WHERE c.redacted_at IS NOT NULL
           AND (c.title <> '{REDACTED_TITLE}' OR c.description <> ''
                OR EXISTS (SELECT 1 FROM jsonb_array_elements(c.allegations) a
                            WHERE jsonb_typeof(a) = 'object' AND coalesce(a->>'description', '') <> ''))
        """,
    ),
    (
        "redacted case without its REDACTED event",
        f"""
        SELECT 'case ' || c.case_number FROM onecms.cases c
         WHERE c.redacted_at IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM onecms.case_events e WHERE e.case_id = c.case_id AND e.event_type = '{REDACTED_EVENT}')
        """,
    ),
    (
        "erased user can still log in",
        f"""
        SELECT 'user ' || id FROM entitlements.users
         WHERE username = {ERASED_USERNAME_SQL} AND (is_active OR password NOT LIKE '!%')
        """,
    ),
]


def redacted_subject_check() -> tuple[str, str]:
    """A subject of a redacted case still holding personal data. The fields are sealed (blank stays blank), so the
    name is compared through its keyed hash, under any key of the set."""
    hashes = ", ".join(f"'{value}'" for value in keyed_hash_candidates(normalise_name(REDACTED_TITLE)))
    return (
        "subject of a redacted case still holds personal data",
        f"""
        SELECT 'subject ' || s.subject_id || ' of case ' || c.case_number
          FROM onecms.case_subjects s JOIN onecms.cases c ON c.case_id = s.case_id
         WHERE c.redacted_at IS NOT NULL
           AND (s.name_hash <> ALL(ARRAY[{hashes}]::text[]) OR s.email <> '' OR s.phone <> '' OR s.notes <> ''
                OR s.date_of_birth IS NOT NULL)
        """,
    )


def integrity_check() -> IntegrityReport:
    """Every invariant of the system: queues, tasks and their archive, then cases, retention and erasure."""
    return check_integrity(checks=[*INTEGRITY_CHECKS, *CASE_INTEGRITY_CHECKS, redacted_subject_check()])
