"""`manage.py migrate` as the owner role: Django's migrate on a connection that logs in with DATABASE_MIGRATE_URL's
credentials, then the grants of every role on what now exists (core/db_roles.py)."""

from __future__ import annotations

from django.core.management.commands import migrate
from django.db import connections

from core.db_roles import grants_apply
from core.owner import connected_as_owner


class Command(migrate.Command):
    help = migrate.Command.help + " Runs as the owner role (DATABASE_MIGRATE_URL) and then applies the roles' grants."

    def handle(self, *args, **options):
        database = options["database"]
        with connected_as_owner(database):
            super().handle(*args, **options)
            with connections[database].cursor() as cursor:
                grants_apply(cursor)
