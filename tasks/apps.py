from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Workflow engine and tasks"

    def ready(self):
        from .bpmn import workflows  # noqa: F401  (registers the engine's task-completed hook)
        from . import hooks
        from .sla import alerts

        hooks.on_tasks_escalated(alerts.sla_breach_alerts_raise)
