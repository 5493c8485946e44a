"""The invariants of cases, checked after those of tasks and queues (tasks/sla/maintenance.py): `check_integrity`."""

from __future__ import annotations

import psycopg
from django.db import connection, transaction

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


# --- after a restore: the history the restored database holds, against its source ---------------------------------

# The append-only histories; task history counts its live and archived rows together (the archive job moves rows
# between them, on either side of a restore).
HISTORY_SOURCES = {
    "task history (live and archived)": """
        SELECT event_id, event_type, old_values, new_values, comment, created_at, actor_id, via_account_id, task_id
          FROM flowable.task_history
        UNION ALL
        SELECT event_id, event_type, old_values, new_values, comment, created_at, actor_id, via_account_id, task_id
          FROM flowable.task_history_archive
    """,
    "case events": "SELECT * FROM onecms.case_events",
    "security events": "SELECT * FROM entitlements.security_events",
}
HISTORY_DIGEST_SQL = """
SELECT count(*), coalesce(sum(hashtextextended(h::text, 0)::numeric), 0)::text
  FROM ({rows}) h
 WHERE h.created_at <= %(until)s
"""
# Row text depends on these: both sides render rows alike.
DIGEST_SESSION_SQL = "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL extra_float_digits = 1"


def history_digests(cursor, until) -> dict[str, tuple[int, str]]:
    """{history: (rows, checksum)} of the rows written up to `until`; the checksum is a sum of row hashes (order and
    archiving do not change it, any changed, missing or extra row does)."""
    cursor.execute(DIGEST_SESSION_SQL)
    digests = {}
    for name, rows in HISTORY_SOURCES.items():
        cursor.execute(HISTORY_DIGEST_SQL.format(rows=rows), {"until": until})
        count, checksum = cursor.fetchone()
        digests[name] = (count, checksum)
    return digests


def history_compare(source_url: str, until) -> list[str]:
    """What differs between this database's history and the source's, up to `until` (a restore's recovery point):
    one line per history whose row count or checksum differs. Rows written by a transaction still open at `until`
    may be on one side only; a retention or erasure run on the source after `until` rewrites rows it compares."""
    with transaction.atomic(), connection.cursor() as cursor:
        here = history_digests(cursor, until)
    try:
        with psycopg.connect(source_url, connect_timeout=10) as source, source.transaction():
            with source.cursor() as cursor:
                there = history_digests(cursor, until)
    except psycopg.OperationalError as exc:
        return [f"cannot read the source database: {str(exc).strip().splitlines()[0]}"]
    problems = []
    for name, (count, checksum) in here.items():
        source_count, source_checksum = there[name]
        if count != source_count:
            problems.append(f"{name} up to {until}: {count} row(s) here, {source_count} in the source")
        elif checksum != source_checksum:
            problems.append(f"{name} up to {until}: the same {count} row(s) count, but their contents differ")
    return problems
