"""Create the access audit's missing month partitions (the daily beat job does the same)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from core.errors import InvalidInput
from entitlements.services import ACCESS_AUDIT_MONTHS_AHEAD, access_audit_partitions_ensure


class Command(BaseCommand):
    help = "Create the month partitions of entitlements.access_audit from this month to N months ahead."

    def add_arguments(self, parser):
        parser.add_argument(
            "--months-ahead",
            type=int,
            default=ACCESS_AUDIT_MONTHS_AHEAD,
            help=f"How many months after this one to cover (default {ACCESS_AUDIT_MONTHS_AHEAD}, at most 24).",
        )

    def handle(self, *args, **options):
        try:
            created = access_audit_partitions_ensure(months_ahead=options["months_ahead"])
        except InvalidInput as exc:
            raise CommandError(exc.detail) from exc
        except DatabaseError as exc:
            raise CommandError(f"creating partitions failed: {str(exc).splitlines()[0]}") from exc
        if created:
            self.stdout.write(f"Created {', '.join(created)}.")
        else:
            self.stdout.write("Every partition exists already.")
