from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "queues"
    verbose_name = "Queues"

    def ready(self):
        from entitlements import signals as entitlement_signals
        from entitlements.models import WorkflowRole

        from . import services

        entitlement_signals.role_changed.connect(
            services.role_queue_permissions_sync, sender=WorkflowRole, dispatch_uid="queues.role_queue_permissions_sync"
        )
