"""Re-encrypt every sealed value under the current key, in batches, resumably, with a progress bar."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.encryption import key_set
from core.key_rotation import DEFAULT_BATCH_SIZE, rotate_encryption_keys
from entitlements.row_scope import system_scope


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted value (and keyed hash) that is not under the current key (the first of "
        "FIELD_ENCRYPTION_KEYS). Batched and resumable: run it again after an interruption. Afterwards the old keys "
        "can be removed from the key set. Values no configured key opens are listed, never changed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; write nothing.")
        parser.add_argument(
            "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help=f"Rows per batch (default {DEFAULT_BATCH_SIZE})."
        )
        parser.add_argument(
            "--encrypt-plaintext",
            action="store_true",
            help="Also encrypt plaintext left in encrypted columns (e.g. task history comments written before "
            "comments were encrypted).",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, dry_run=False, batch_size=DEFAULT_BATCH_SIZE, encrypt_plaintext=False, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        bars = []

        def progress(table, total):
            bar = tqdm(total=total, desc=table.label, unit="rows", disable=options["no_progress"] or None)
            bars.append(bar)
            return bar.update

        try:
            with system_scope():  # every case, subject and task, for nobody in particular
                report = rotate_encryption_keys(
                    batch_size=batch_size, dry_run=dry_run, encrypt_plaintext=encrypt_plaintext, progress=progress
                )
        finally:
            for bar in bars:
                bar.close()
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        self.stdout.write(f"Current key: {key_set().current_id}. Rows scanned: {report.rows_scanned}.")
        for column, count in sorted(report.values_changed.items()):
            self.stdout.write(f"  {column}: {verb} {count}")
        self.stdout.write(f"Rows {'to change' if dry_run else 'changed'}: {report.rows_changed}.")
        if report.unreadable_count:
            for cell in report.unreadable:
                self.stdout.write(f"  unreadable: {cell}")
            raise CommandError(
                f"{report.unreadable_count} value(s) cannot be decrypted with the configured keys (listed above): "
                "put their key back in the key set and run again"
            )
        if not dry_run:
            self.stdout.write(self.style.SUCCESS("Every encrypted value is under the current key."))
