"""Refresh the dashboard materialized views (CONCURRENTLY: readers are not blocked)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from tasks.sla.maintenance import refresh_dashboards


class Command(BaseCommand):
    help = "Refresh the supervisor dashboard's materialized views."

    def handle(self, *args, **options):
        try:
            views = refresh_dashboards()
        except DatabaseError as exc:
            raise CommandError(f"refresh failed: {str(exc).splitlines()[0]}") from exc
        self.stdout.write(f"Refreshed {', '.join(views)}.")
