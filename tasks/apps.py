from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Workflow engine and tasks"

    def ready(self):
        from . import signals
        from .bpmn import workflows
        from .models import WorkflowTask

        signals.task_completed.connect(
            workflows.advance_on_task_completed,
            sender=WorkflowTask,
            dispatch_uid="tasks.bpmn.advance_on_task_completed",
        )
