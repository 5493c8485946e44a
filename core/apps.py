from django.apps import AppConfig
from django.conf import settings
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate, pre_migrate


class CoreConfig(AppConfig):
    """Shared helpers; an app for its commands (create_database_roles, migrate as the owner, check_database), so
    that migrate runs without the statement timeout (core.timeouts), and for what PgBouncer needs checked
    (core.pgbouncer)."""

    name = "core"
    verbose_name = "Core"

    def ready(self):
        from . import timeouts

        pre_migrate.connect(timeouts.statement_timeout_lift_for_migrate, dispatch_uid="core.timeouts.lift_for_migrate")
        post_migrate.connect(
            timeouts.statement_timeout_restore_after_migrate, dispatch_uid="core.timeouts.restore_after_migrate"
        )
        if settings.DATABASE_PGBOUNCER:
            from . import pgbouncer

            if settings.DATABASE_SET_ROLE:
                connection_created.connect(
                    pgbouncer.acting_role_verifier(
                        database=settings.DATABASES["default"], role=settings.DATABASE_SET_ROLE
                    ),
                    weak=False,
                    dispatch_uid="core.pgbouncer.acting_role_verifier",
                )
            if settings.DATABASE_PREPARED_STATEMENTS:
                pgbouncer.prepared_statements_support_check(settings.DATABASES["default"])
