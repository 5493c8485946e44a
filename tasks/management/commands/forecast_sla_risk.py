"""Forecast every active task's risk of missing its due date now, then age the priorities of queues that age them
(what the beat job runs every five minutes)."""

from django.core.management.base import BaseCommand

from entitlements.row_scope import system_scope
from tasks.forecast.services import task_risks_refresh
from tasks.sla.aging import task_priorities_age


class Command(BaseCommand):
    help = "Store each active task's breach probability and expected completion (tasks/forecast/)."

    def add_arguments(self, parser):
        parser.add_argument("--queue", help="Only this queue.")

    def handle(self, *args, queue=None, **options):
        with system_scope():  # the system's work: it reads every queue's tasks
            refresh = task_risks_refresh(queue_name=queue)
            aging = task_priorities_age(queue_name=queue)
        self.stdout.write(f"{refresh.tasks} tasks in {refresh.queues} queues forecast, {refresh.at_risk} at risk.")
        self.stdout.write(f"{aging.changed} aging boosts changed.")
