"""Verify the invariants of queues, tasks and history; exit non-zero listing each violation."""

from django.core.management.base import BaseCommand, CommandError

from entitlements.row_scope import system_scope
from tasks.sla.maintenance import check_integrity


class Command(BaseCommand):
    help = (
        "Check that loads equal CLAIMED counts, CLAIMED tasks have assignees, open tasks' processes run, history has no "
        "gaps, and every encrypted value is under a configured key."
    )

    def handle(self, *args, **options):
        with system_scope():  # the system's work: it checks every queue's tasks
            report = check_integrity()
            for violation in report.violations:
                self.stdout.write(violation)
            if not report.ok:
                raise CommandError(f"{len(report.violations)} integrity violation(s)")
            self.stdout.write("All invariants hold.")
