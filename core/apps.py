from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared helpers; an app only for its management commands (database roles, migrate as the owner)."""

    name = "core"
    verbose_name = "Core"
