"""Move flowable.task_history into month partitions online, or show where that stands (tasks/history_partitioning.py)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from tqdm import tqdm

from core.errors import WorkflowError
from core.owner import connected_as_owner
from tasks.history_partitioning import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DUTY,
    batch_size_check,
    duty_check,
    task_history_partition,
    task_history_partitioning_abandon,
    task_history_partitioning_status,
)

INTERRUPTED_EXIT_CODE = 130


def _number(text: str, option: str, kind=int):
    try:
        return kind(text)
    except ValueError:
        raise CommandError(f"{option} must be a number, got {text!r}") from None


class Command(BaseCommand):
    help = (
        "Partition the task history by month while the system runs: copy it in batches into a partitioned table "
        "that a trigger keeps in step, check both match, then switch in one short transaction. Safe to interrupt "
        "and run again; logs in as the owner role (DATABASE_MIGRATE_URL)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--status", action="store_true", help="Say where the history stands; change nothing.")
        parser.add_argument(
            "--abandon", action="store_true", help="Drop an unfinished copy; the history stays one table."
        )
        parser.add_argument("--batch-size", default=str(DEFAULT_BATCH_SIZE), help="Events copied per transaction.")
        parser.add_argument(
            "--duty",
            default=str(DEFAULT_DUTY),
            help=f"Share of the time the copy works, the rest left to users (default {DEFAULT_DUTY}; 1: no pauses).",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar (logs, cron).")

    def handle(self, *args, **options):
        batch_size = _number(options["batch_size"], "--batch-size")
        duty = _number(options["duty"], "--duty", float)
        try:
            batch_size_check(batch_size)
            duty_check(duty)
        except WorkflowError as exc:
            raise CommandError(exc.detail) from exc
        try:
            with connected_as_owner():
                if options["status"]:
                    self._status()
                    return
                if options["abandon"]:
                    dropped = task_history_partitioning_abandon()
                    self.stdout.write("Dropped the unfinished copy." if dropped else "There was no unfinished copy.")
                    return
                self._partition(batch_size, duty, progress=not options["no_progress"])
        except KeyboardInterrupt:
            self.stderr.write("Interrupted: the copy so far is kept; run the command again to go on.")
            raise SystemExit(INTERRUPTED_EXIT_CODE) from None
        except WorkflowError as exc:
            raise CommandError(exc.detail) from exc
        except DatabaseError as exc:
            raise CommandError(f"partitioning failed: {(str(exc).strip().splitlines() or ['?'])[0]}") from exc

    def _status(self):
        status = task_history_partitioning_status()
        if status.partitioned:
            self.stdout.write(f"Partitioned: {len(status.partitions)} partitions ({', '.join(status.partitions)}).")
        elif status.in_progress:
            self.stdout.write(
                f"In progress: copied up to event {status.copied_up_to} of {status.backfill_target}; run the command "
                "to go on."
            )
        else:
            self.stdout.write(f"One table, about {status.rows} events: run the command to partition it.")

    def _partition(self, batch_size: int, duty: float, *, progress: bool):
        bar = None

        def on_batch(copied: int, up_to: int, target: int) -> None:
            nonlocal bar
            if not progress:
                return
            if bar is None:
                bar = tqdm(total=target, unit="id", desc="copying", file=self.stderr._out)
            bar.n = up_to
            bar.refresh()

        try:
            result = task_history_partition(batch_size=batch_size, duty=duty, on_batch=on_batch)
        finally:
            if bar is not None:
                bar.close()
        if result.already_partitioned:
            self.stdout.write("The task history is partitioned already.")
            return
        self.stdout.write(
            f"Partitioned: copied {result.rows_copied} events in {result.batches} batches; switched over in "
            f"{result.cutover_attempts} attempt(s); {len(result.partitions)} partitions."
        )
