"""Move finished tasks and their history older than N days into the month-partitioned archive tables."""

import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from tqdm import tqdm

from core.errors import InvalidInput, WorkflowError
from entitlements.row_scope import system_scope
from tasks.sla.archive import DEFAULT_BATCH_SIZE, completed_tasks_archive, completed_tasks_archive_plan

INTERRUPTED_EXIT_CODE = 130  # the shell's code for a run stopped by Ctrl-C


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _whole_number(text: str, option: str) -> int:
    # Parsed here rather than by argparse so a bad value is one line, not a usage screen.
    try:
        return int(text)
    except ValueError:
        raise CommandError(f"{option} must be a whole number, got {text!r}") from None


class Command(BaseCommand):
    help = (
        "Move COMPLETED, CANCELLED and ESCALATED tasks completed more than --days ago, with their history, into "
        "the archive tables, in batches. Safe to interrupt and run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", required=True, help="Archive tasks completed more than this many days ago.")
        parser.add_argument("--batch-size", default=str(DEFAULT_BATCH_SIZE), help="Tasks moved per transaction.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would be archived; change nothing.")
        parser.add_argument(
            "--no-progress",
            action="store_true",
            help="No progress bar (it is off anyway when stderr is not a terminal).",
        )

    def handle(self, *args, days, batch_size, dry_run=False, no_progress=False, **options):
        with system_scope():  # the system's work: it archives every queue's tasks
            days = _whole_number(str(days), "--days")
            batch_size = _whole_number(str(batch_size), "--batch-size")
            done = {"tasks": 0, "history": 0}
            try:
                plan = completed_tasks_archive_plan(older_than_days=days)
                if dry_run:
                    self._report_plan(plan, days)
                    return
                with tqdm(
                    total=plan.tasks,
                    unit="task",
                    desc="Archiving",
                    file=sys.stderr,
                    disable=True if no_progress else None,
                ) as bar:

                    def on_batch(tasks, history):
                        done["tasks"] += tasks
                        done["history"] += history
                        bar.update(tasks)

                    result = completed_tasks_archive(older_than_days=days, batch_size=batch_size, on_batch=on_batch)
            except KeyboardInterrupt:
                raise CommandError(
                    f"interrupted after archiving {done['tasks']} task(s) and {done['history']} history event(s); "
                    "the batch in progress was rolled back, run again to continue",
                    returncode=INTERRUPTED_EXIT_CODE,
                ) from None
            except InvalidInput as exc:
                raise CommandError(exc.detail) from None
            except (WorkflowError, DatabaseError) as exc:
                detail = exc.detail if isinstance(exc, WorkflowError) else _first_line(exc)
                raise CommandError(
                    f"archival failed after {done['tasks']} task(s) and {done['history']} history event(s): {detail}"
                ) from exc
            partitions = (
                f"; created partitions {', '.join(result.partitions_created)}" if result.partitions_created else ""
            )
            self.stdout.write(
                f"Archived {result.tasks} task(s) and {result.history} history event(s) completed before "
                f"{result.cutoff:%Y-%m-%d %H:%M} UTC in {result.batches} batch(es){partitions}."
            )
            if result.left_locked:
                self.stdout.write(
                    f"{result.left_locked} task(s) were locked by another transaction and left live; run again to move them."
                )

    def _report_plan(self, plan, days):
        partitions = (
            f"; would create partitions {', '.join(plan.partitions_to_create)}" if plan.partitions_to_create else ""
        )
        self.stdout.write(
            f"Dry run: would archive {plan.tasks} task(s) and {plan.history} history event(s) completed before "
            f"{plan.cutoff:%Y-%m-%d %H:%M} UTC ({days} days ago){partitions}. Nothing changed."
        )
