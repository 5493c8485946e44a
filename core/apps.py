from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_migrate


class CoreConfig(AppConfig):
    """Shared helpers; an app for its commands (create_database_roles, migrate as the owner, check_database) and so
    that migrate runs without the statement timeout (core.timeouts)."""

    name = "core"
    verbose_name = "Core"

    def ready(self):
        from . import timeouts

        pre_migrate.connect(timeouts.statement_timeout_lift_for_migrate, dispatch_uid="core.timeouts.lift_for_migrate")
        post_migrate.connect(
            timeouts.statement_timeout_restore_after_migrate, dispatch_uid="core.timeouts.restore_after_migrate"
        )
