"""Signals the tasks app sends as work moves, so that cases can follow without tasks importing it.

Each is sent inside the transaction that made the change: receivers write in that transaction, and an exception
a receiver raises rolls the change back. Receivers take the keyword arguments named here (plus `sender`).
"""

from django.dispatch import Signal

# sender WorkflowTask; task, from_queue, to_queue, user, reason: one task changed queue (overflow, move, escalation).
task_moved = Signal()

# sender WorkflowTask; task, variables, user, via_account: a task of a process instance was completed. The engine
# (tasks/bpmn/workflows.py) receives it to advance the instance.
task_completed = Signal()

# sender ProcessInstance; instance, task, user: the engine opened a task of a process instance.
process_task_opened = Signal()

# sender ProcessInstance; instance: a process instance reached its end.
process_completed = Signal()

# sender WorkflowTask; moves [{task_id, process_instance_id, from_queue, to_queue}], reason, at: tasks moved in one
# set-based statement (the SLA sweep).
tasks_moved_in_bulk = Signal()
