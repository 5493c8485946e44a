"""tasks.signals: sent inside the transaction that moved the work, with what moved, where and by whom."""

import pytest

from tasks import services, signals
from tasks.models import WorkflowTask

pytestmark = pytest.mark.django_db


class ReceiverFailed(Exception):
    pass


@pytest.fixture
def task_moved_receiver():
    """Connects a receiver to task_moved for one test."""
    connected = []

    def connect(receiver):
        signals.task_moved.connect(receiver, sender=WorkflowTask, weak=False, dispatch_uid=f"test-{len(connected)}")
        connected.append(f"test-{len(connected)}")

    yield connect
    for uid in connected:
        signals.task_moved.disconnect(sender=WorkflowTask, dispatch_uid=uid)


def test_task_moved_names_the_task_both_queues_the_mover_and_the_reason(supervisor_sam, make_task, task_moved_receiver):
    task = make_task("intake")
    seen = []
    task_moved_receiver(lambda **kwargs: seen.append(kwargs))

    services.task_move(user=supervisor_sam, task_id=task.pk, queue_name="legal-review", reason="needs a lawyer")

    assert len(seen) == 1
    sent = seen[0]
    assert sent["sender"] is WorkflowTask and sent["task"].pk == task.pk
    assert (sent["from_queue"], sent["to_queue"]) == ("intake", "legal-review")
    assert sent["user"] == supervisor_sam and sent["reason"] == "needs a lawyer"


def test_a_receiver_that_fails_undoes_the_move_it_was_told_about(supervisor_sam, make_task, task_moved_receiver):
    task = make_task("intake")

    def refuse(**kwargs):
        raise ReceiverFailed

    task_moved_receiver(refuse)

    with pytest.raises(ReceiverFailed):
        services.task_move(user=supervisor_sam, task_id=task.pk, queue_name="legal-review")

    assert WorkflowTask.objects.get(pk=task.pk).queue_id == "intake"
