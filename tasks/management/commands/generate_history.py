"""Generate weeks of realistic history for a new queue, ending now (tasks/forecast/history.py has the model)."""

from django.core.management.base import BaseCommand, CommandError

from core.errors import Conflict
from entitlements.row_scope import system_scope
from tasks.forecast.history import DAILY_TASKS
from tasks.forecast.history_load import history_generate


class Command(BaseCommand):
    help = (
        "Simulate a queue's arrivals (weekly seasonality), staffing (absences, short weeks) and lognormal service "
        "per task type, and store the tasks and their history up to now."
    )

    def add_arguments(self, parser):
        parser.add_argument("--queue", default="generated-history", help="A new queue to create and fill.")
        parser.add_argument("--weeks", type=int, default=12)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--department", help="Department code: the queue takes its business calendar.")
        parser.add_argument(
            "--daily-tasks",
            type=float,
            default=DAILY_TASKS,
            help=f"Mean arrivals per business day before seasonality (default {DAILY_TASKS}; the team of eight "
            "keeps up with about 40: more makes a backlog with tasks at risk).",
        )

    def handle(self, *args, queue, weeks, seed, daily_tasks, department=None, **options):
        if weeks < 1:
            raise CommandError("--weeks must be at least 1")
        with system_scope():  # the system's work: it writes a whole queue's tasks
            try:
                loaded = history_generate(
                    queue_name=queue, weeks=weeks, seed=seed, department=department, daily_tasks=daily_tasks
                )
            except Conflict as error:
                raise CommandError(str(error)) from error
        self.stdout.write(
            f"{loaded.queue}: {loaded.tasks} tasks ({loaded.active} still active), {loaded.events} history events, "
            f"{loaded.caseworkers} caseworkers."
        )
