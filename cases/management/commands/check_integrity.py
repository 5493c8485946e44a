"""Verify the invariants of queues, tasks, history, the archive and cases; exit non-zero listing each violation.
After a restore, --compare-with the source also compares the history up to the recovery point."""

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from cases.integrity import history_compare, integrity_check
from entitlements.row_scope import system_scope


class Command(BaseCommand):
    help = (
        "Check that loads equal CLAIMED counts, CLAIMED tasks have assignees, open tasks' processes run, history has "
        "no gaps, the archive has no orphans, retention and erasure left nothing behind, and every encrypted value is "
        "under a configured key. After a point-in-time restore, --compare-with SOURCE_URL --until TIMESTAMP also "
        "compares the row counts and checksums of task history, case events and security events written up to "
        "TIMESTAMP with the source database's."
    )

    def add_arguments(self, parser):
        parser.add_argument("--compare-with", metavar="SOURCE_URL", help="The database this one was restored from.")
        parser.add_argument("--until", metavar="TIMESTAMP", help="The recovery point (ISO 8601 with a time zone).")

    def handle(self, *args, compare_with=None, until=None, **options):
        if bool(compare_with) != bool(until):
            raise CommandError("--compare-with and --until go together")
        moment = None
        if until:
            try:
                moment = parse_datetime(until)
            except ValueError:  # well formed, but no such moment (month 13, say)
                moment = None
            if moment is None or moment.tzinfo is None:
                raise CommandError(f"--until must be an ISO 8601 time with a time zone, not {until!r}")
        with system_scope():  # the system's work: it checks every queue's tasks
            report = integrity_check()
            violations = list(report.violations)
            if compare_with:
                violations += history_compare(compare_with, moment)
            for violation in violations:
                self.stdout.write(violation)
            if violations:
                raise CommandError(f"{len(violations)} integrity violation(s)")
            self.stdout.write(
                "All invariants hold." + (f" History up to {until} matches the source." if compare_with else "")
            )
