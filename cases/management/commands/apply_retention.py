"""Apply the retention policies: redact or delete the closed cases past their type's retention period."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.utils import timezone

from cases.models import RetentionAction
from cases.privacy.retention import DEFAULT_BATCH_SIZE, retention_apply, retention_due
from core.errors import InvalidInput, WorkflowError
from entitlements.row_scope import system_scope

INTERRUPTED_EXIT_CODE = 130  # the shell's code for a run stopped by Ctrl-C


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Command(BaseCommand):
    help = (
        "Redact or delete the closed cases whose retention period (admin: Retention policies) has passed, live and "
        "archived rows, in batches. Lists each case and what is done to it. Safe to interrupt and run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List what would be done; change nothing.")
        parser.add_argument("--batch-size", default=str(DEFAULT_BATCH_SIZE), help="Cases per transaction.")

    def handle(self, *args, dry_run=False, batch_size=DEFAULT_BATCH_SIZE, **options):
        with system_scope():  # an operator's command over every case and person: RLS scope of the system
            try:
                batch_size = int(batch_size)
            except ValueError:
                raise CommandError(f"--batch-size must be a whole number, got {batch_size!r}") from None
            now = timezone.now()
            if dry_run:
                due = retention_due(now=now)
                for item in due:
                    self.stdout.write(item.describe())
                redact = sum(1 for item in due if item.action == RetentionAction.REDACT)
                self.stdout.write(
                    f"Dry run: would redact {redact} and delete {len(due) - redact} case(s). Nothing changed."
                )
                return
            done = []

            def on_batch(items):
                done.extend(items)
                for item in items:
                    self.stdout.write(item.describe())

            try:
                result = retention_apply(now=now, batch_size=batch_size, on_batch=on_batch)
            except KeyboardInterrupt:
                raise CommandError(
                    f"interrupted after {len(done)} case(s); the batch in progress was rolled back, run again to continue",
                    returncode=INTERRUPTED_EXIT_CODE,
                ) from None
            except InvalidInput as exc:
                raise CommandError(exc.detail) from None
            except (WorkflowError, DatabaseError) as exc:
                detail = exc.detail if isinstance(exc, WorkflowError) else _first_line(exc)
                raise CommandError(f"retention failed after {len(done)} case(s): {detail}") from exc
            self.stdout.write(
                f"Redacted {result.count(RetentionAction.REDACT)} and deleted {result.count(RetentionAction.DELETE)} "
                f"case(s) in {result.batches} batch(es)."
            )
            if result.left_locked:
                self.stdout.write(
                    f"{result.left_locked} case(s) were locked by another transaction and left as they were; "
                    "run again to apply them."
                )
