"""Move OPEN tasks out of queues at capacity into their overflow queues."""

from django.core.management.base import BaseCommand

from entitlements.row_scope import system_scope
from tasks.services import rebalance_queue_loads


class Command(BaseCommand):
    help = "Move OPEN tasks from queues at capacity to their overflow queue, as far as the overflow has room."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report the moves; change nothing.")

    def handle(self, *args, dry_run=False, **options):
        with system_scope():  # the system's work: it moves tasks between any queues
            moves = rebalance_queue_loads(dry_run=dry_run)
            verb = "would move" if dry_run else "moved"
            for move in moves:
                self.stdout.write(f"{move['from_queue']} → {move['to_queue']}: {verb} {move['tasks']} task(s)")
            self.stdout.write(f"Total: {verb} {sum(m['tasks'] for m in moves)} task(s).")
