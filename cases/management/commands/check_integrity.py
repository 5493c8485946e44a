"""Verify the invariants of queues, tasks, history, the archive and cases; exit non-zero listing each violation."""

from django.core.management.base import BaseCommand, CommandError

from cases.integrity import integrity_check
from entitlements.row_scope import system_scope


class Command(BaseCommand):
    help = (
        "Check that loads equal CLAIMED counts, CLAIMED tasks have assignees, open tasks' processes run, history has "
        "no gaps, the archive has no orphans, retention and erasure left nothing behind, and every encrypted value is "
        "under a configured key."
    )

    def handle(self, *args, **options):
        with system_scope():  # the system's work: it checks every queue's tasks
            report = integrity_check()
            for violation in report.violations:
                self.stdout.write(violation)
            if not report.ok:
                raise CommandError(f"{len(report.violations)} integrity violation(s)")
            self.stdout.write("All invariants hold.")
