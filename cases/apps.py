from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = "Cases"

    def ready(self):
        """A case follows its workflow through the tasks app's signals (tasks never imports cases)."""
        from tasks import signals as task_signals
        from tasks.models import ProcessInstance, WorkflowTask

        from . import services

        task_signals.task_moved.connect(
            services.record_task_moved, sender=WorkflowTask, dispatch_uid="cases.record_task_moved"
        )
        task_signals.tasks_moved_in_bulk.connect(
            services.record_tasks_moved_in_bulk, sender=WorkflowTask, dispatch_uid="cases.record_tasks_moved_in_bulk"
        )
        task_signals.process_task_opened.connect(
            services.record_task_opened, sender=ProcessInstance, dispatch_uid="cases.record_task_opened"
        )
        task_signals.process_completed.connect(
            services.record_process_completed, sender=ProcessInstance, dispatch_uid="cases.record_process_completed"
        )
