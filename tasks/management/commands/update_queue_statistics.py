"""Snapshot every queue's figures into queue_statistics."""

from django.core.management.base import BaseCommand

from entitlements.row_scope import system_scope
from tasks.sla.maintenance import update_queue_statistics


class Command(BaseCommand):
    help = "Record each queue's open, claimed, escalated and overdue counts, ages and 24 h SLA compliance."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Compute and print; store nothing.")

    def handle(self, *args, dry_run=False, **options):
        with system_scope():  # the system's work: it counts every queue's tasks
            for s in update_queue_statistics(dry_run=dry_run):
                compliance = f"{s.sla_compliance_pct:.1f}%" if s.sla_compliance_pct is not None else "n/a"
                self.stdout.write(
                    f"{s.queue.queue_name}: open {s.open_count}, claimed {s.claimed_count}, escalated {s.escalated_count},"
                    f" overdue {s.overdue_count}, completed 24h {s.completed_last_24h}, SLA {compliance}"
                )
            self.stdout.write("Dry run: nothing stored." if dry_run else "Statistics stored.")
