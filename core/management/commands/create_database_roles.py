"""`manage.py create_database_roles`: make the owner, application, reporting and maintenance roles (core/db_roles.py)
through a superuser connection (DATABASE_ADMIN_URL, default DATABASE_URL). Run once per cluster by an operator; the
embedded default runs it by itself. Passwords come from DATABASE_<ROLE>_PASSWORD when set (OWNER, APP, REPORTING,
MAINTENANCE); without one a role logs in only where pg_hba.conf trusts it or checks a certificate."""

from __future__ import annotations

import os
import shlex

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.db_roles import APP, MAINTENANCE, OWNER, REPORTING, ROLES, database_url, roles_ensure
from core.timeouts import session_timeouts

PASSWORD_VARIABLES = {role: f"DATABASE_{role.removeprefix('workflow_').upper()}_PASSWORD" for role in ROLES}
URL_VARIABLES = {
    OWNER: "DATABASE_MIGRATE_URL",
    APP: "DATABASE_APP_URL",
    REPORTING: "DATABASE_REPORTING_URL",
    MAINTENANCE: "DATABASE_MAINTENANCE_URL",
}


class Command(BaseCommand):
    help = "Create (or bring up to date) the database roles the system runs as, through a superuser connection."

    def add_arguments(self, parser):
        parser.add_argument("--database", help="Also create this database, owned by the owner role, if missing.")
        parser.add_argument(
            "--owner-createdb", action="store_true", help="Let the owner role create databases (the test runner's)."
        )
        parser.add_argument(
            "--print-env",
            action="store_true",
            help="Print shell export lines with each role's URL (DATABASE_MIGRATE_URL, DATABASE_APP_URL, ...).",
        )

    def handle(self, *args, **options):
        admin = settings.ADMIN_DATABASE
        passwords = {
            role: os.environ[variable] for role, variable in PASSWORD_VARIABLES.items() if os.environ.get(variable)
        }
        try:
            roles_ensure(
                database_url(admin),
                database=options["database"],
                owner_createdb=options["owner_createdb"],
                passwords=passwords,
                timeouts=session_timeouts(),
            )
        except psycopg.Error as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CommandError(
                f"could not create the database roles as {admin.get('USER')!r} (set DATABASE_ADMIN_URL to a "
                f"superuser's URL): {message}"
            ) from error
        if options["print_env"]:
            name = options["database"] or admin.get("NAME")
            self.stdout.write(f"export DATABASE_ADMIN_URL={shlex.quote(database_url(admin))}")
            for role, variable in URL_VARIABLES.items():
                url = database_url(admin, user=role, password=passwords.get(role, ""), name=name)
                self.stdout.write(f"export {variable}={shlex.quote(url)}")
        else:
            self.stdout.write(f"Roles ready: {', '.join(ROLES)}.")
