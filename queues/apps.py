from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "queues"
    verbose_name = "Queues"

    def ready(self):
        from entitlements import hooks

        from . import services

        hooks.on_role_changed(services.role_queue_permissions_sync)
