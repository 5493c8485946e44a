from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Workflow engine and tasks"

    def ready(self):
        from . import signals
        from .bpmn import called_processes, decisions, dmn, workflows
        from .models import ProcessInstance, WorkflowTask

        signals.task_completed.connect(
            workflows.advance_on_task_completed,
            sender=WorkflowTask,
            dispatch_uid="tasks.bpmn.advance_on_task_completed",
        )
        signals.process_completed.connect(
            called_processes.return_to_caller,
            sender=ProcessInstance,
            dispatch_uid="tasks.bpmn.return_to_caller",
        )
        dmn.use_resolver(decisions.decision_for_run)
