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
        # Any edit that can change which calendar a queue counts in, or the calendar itself (calendar_cache.py).
        from django.db.models.signals import post_delete, post_save

        from entitlements.models import Department

        from .calendar_cache import work_calendars_changed
        from .models import BusinessCalendar, BusinessHoliday, DepartmentCalendar

        for model in (BusinessCalendar, BusinessHoliday, DepartmentCalendar, Department):
            for signal in (post_save, post_delete):
                signal.connect(
                    work_calendars_changed, sender=model, dispatch_uid=f"queues.work_calendars_changed.{model.__name__}"
                )
