"""Connect as the application does and say how (server, user, TLS, time limits), or in one line why not."""

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections

from core.database import connection_facts, connection_failure_reason


class Command(BaseCommand):
    help = (
        "Connect to the database with the application's settings (DATABASE_URL) and print the server, user, TLS "
        "and session time limits; exit 1 with one line naming the problem (TLS included) when it cannot connect."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--database", default="default", choices=list(connections), help="Which database setting to check."
        )

    def handle(self, *args, database="default", **options):
        try:
            facts = connection_facts(connections[database])
        except DatabaseError as exc:
            raise CommandError(f"cannot connect to the database: {connection_failure_reason(exc)}") from None
        except ImproperlyConfigured as exc:  # a session the application refuses (core/pgbouncer.py)
            raise CommandError(f"cannot use the database: {exc}") from None
        limits = ", ".join(f"{name}={value}" for name, value in facts.timeouts.items())
        self.stdout.write(
            f"Connected to PostgreSQL {facts.server_version}, database {facts.database} as {facts.user}; "
            f"TLS: {facts.tls}; {limits}."
        )
