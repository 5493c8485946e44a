"""Apply the queues' escalation rules to every task that meets them (idempotent)."""

from django.core.management.base import BaseCommand, CommandError

from core.errors import WorkflowError
from entitlements.row_scope import system_scope
from tasks.sla.escalation import escalate_overdue_tasks


class Command(BaseCommand):
    help = "Escalate OPEN and CLAIMED tasks that meet their queue's next escalation level."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report what would be escalated; change nothing.")

    def handle(self, *args, dry_run=False, **options):
        with system_scope():  # the system's work: it escalates in every queue
            try:
                outcomes = escalate_overdue_tasks(dry_run=dry_run)
            except WorkflowError as exc:
                raise CommandError(exc.detail) from exc
            verb = "would escalate" if dry_run else "escalated"
            for outcome in outcomes:
                self.stdout.write(f"{outcome.queue}: {verb} {outcome.tasks} task(s) to level {outcome.level}")
            self.stdout.write(f"Total: {verb} {sum(o.tasks for o in outcomes)} task(s).")
