"""External tasks on PostgreSQL: the engine waits at them; worker accounts fetch, lock, complete and fail them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import Conflict, PermissionDenied
from tasks.bpmn import workflows
from tasks.external import services
from tasks.external.services import TopicRequest
from tasks.models import (
    ExternalTask,
    ExternalTaskEventType,
    ExternalTaskHistory,
    ExternalTaskStatus,
    IncidentStep,
    ProcessIncident,
    ProcessStatus,
    WorkflowTask,
)

from .conftest import TOPIC

pytestmark = pytest.mark.django_db
LOCK_MS = 60_000


def fetch(user, worker_id="worker-1", *, max_tasks=10, topic=TOPIC, variables=None):
    return services.external_tasks_fetch_and_lock(
        user=user,
        worker_id=worker_id,
        topics=[TopicRequest(topic_name=topic, lock_duration_ms=LOCK_MS, variables=variables)],
        max_tasks=max_tasks,
    )


def events(item_id) -> list[str]:
    return list(ExternalTaskHistory.objects.filter(external_task_id=item_id).values_list("event_type", flat=True))


def test_starting_a_process_makes_an_external_task_the_instance_waits_at(start_records_check):
    instance = start_records_check("CASE-1", suspect="Mallory")

    item = ExternalTask.objects.get(process_instance=instance)
    assert (item.topic_name, item.activity_id, item.priority, item.status) == (
        TOPIC,
        "Activity_records_check",
        60,
        ExternalTaskStatus.ACTIVE,
    )
    assert not WorkflowTask.objects.filter(process_instance=instance).exists()
    assert events(item.pk) == [ExternalTaskEventType.CREATED]


def test_fetch_and_lock_returns_the_item_with_the_instance_variables_and_locks_it(start_records_check, worker_account):
    instance = start_records_check("CASE-1", suspect="Mallory")

    locked = fetch(worker_account)

    assert [(i.process_instance_id, i.business_key, i.variables) for i in locked] == [
        (instance.pk, "CASE-1", {"suspect": "Mallory"})
    ]
    item = ExternalTask.objects.get(pk=locked[0].external_task_id)
    assert item.worker_id == "worker-1" and item.locked_by == worker_account
    assert item.lock_expires_at > timezone.now()
    assert fetch(worker_account, "worker-2") == []
    history = ExternalTaskHistory.objects.get(external_task=item, event_type=ExternalTaskEventType.LOCKED)
    assert (history.actor, history.worker_id) == (worker_account, "worker-1")


def test_fetch_and_lock_returns_only_the_variables_asked_for(start_records_check, worker_account):
    start_records_check("CASE-1", suspect="Mallory", region="north")

    (item,) = fetch(worker_account, variables=["region"])

    assert item.variables == {"region": "north"}


def test_fetch_and_lock_takes_higher_priority_first_then_older(start_records_check, worker_account):
    first, second = start_records_check("CASE-1"), start_records_check("CASE-2")
    ExternalTask.objects.filter(process_instance=second).update(priority=90)

    locked = fetch(worker_account, max_tasks=1)

    assert [i.process_instance_id for i in locked] == [second.pk]
    assert [i.process_instance_id for i in fetch(worker_account, max_tasks=1)] == [first.pk]


def test_fetch_and_lock_over_several_topics_takes_the_best_of_all_in_order_with_each_topics_lock(
    start_records_check, worker_account
):
    plain, urgent_elsewhere, urgent_here = (start_records_check(f"CASE-{n}") for n in range(3))
    ExternalTask.objects.filter(process_instance=urgent_elsewhere).update(topic_name="other-topic", priority=90)
    ExternalTask.objects.filter(process_instance=urgent_here).update(priority=70)
    before = timezone.now()

    locked = services.external_tasks_fetch_and_lock(
        user=worker_account,
        worker_id="worker-1",
        topics=[
            TopicRequest(topic_name=TOPIC, lock_duration_ms=600_000),
            TopicRequest(topic_name="other-topic", lock_duration_ms=5_000),
            TopicRequest(topic_name=TOPIC, lock_duration_ms=30_000),  # named twice: this request counts
        ],
        max_tasks=2,
    )

    assert [(i.process_instance_id, i.topic_name) for i in locked] == [
        (urgent_elsewhere.pk, "other-topic"),
        (urgent_here.pk, TOPIC),
    ]
    by_instance = {i.process_instance_id: i.lock_expires_at - before for i in locked}
    assert timedelta(seconds=5) <= by_instance[urgent_elsewhere.pk] < timedelta(seconds=30)
    assert timedelta(seconds=30) <= by_instance[urgent_here.pk] < timedelta(seconds=600)
    assert ExternalTaskHistory.objects.filter(event_type=ExternalTaskEventType.LOCKED).count() == 2
    # The probe of TOPIC also held the plain item for a moment; it was not taken, so it is free.
    assert [i.process_instance_id for i in fetch(worker_account, "worker-2")] == [plain.pk]


def test_completing_a_locked_item_moves_the_instance_on_to_its_next_task(start_records_check, worker_account):
    instance = start_records_check("CASE-1")
    (locked,) = fetch(worker_account)

    services.external_task_complete(
        user=worker_account, external_task_id=locked.external_task_id, worker_id="worker-1", variables={"hits": 2}
    )

    item = ExternalTask.objects.get(pk=locked.external_task_id)
    assert item.status == ExternalTaskStatus.COMPLETED and item.completed_at is not None
    review = WorkflowTask.objects.get(process_instance=instance)
    assert (review.name, review.queue_id) == ("Review records", "intake")
    instance.refresh_from_db()
    assert instance.variables["hits"] == 2
    assert events(item.pk)[-1] == ExternalTaskEventType.COMPLETED


def test_a_worker_that_does_not_hold_the_lock_may_not_complete_and_the_refusal_is_recorded(
    start_records_check, worker_account, other_worker_account
):
    start_records_check("CASE-1")
    (locked,) = fetch(worker_account)

    with pytest.raises(Conflict) as refused:
        services.external_task_complete(
            user=other_worker_account, external_task_id=locked.external_task_id, worker_id="worker-2"
        )

    assert refused.value.code == "external_task_locked_by_other"
    assert ExternalTask.objects.get(pk=locked.external_task_id).status == ExternalTaskStatus.ACTIVE
    refusal = ExternalTaskHistory.objects.get(
        external_task_id=locked.external_task_id, event_type=ExternalTaskEventType.REFUSED
    )
    assert (refusal.actor, refusal.worker_id, refusal.new_values["action"]) == (
        other_worker_account,
        "worker-2",
        "complete",
    )


def test_an_item_cannot_be_completed_twice(start_records_check, worker_account):
    start_records_check("CASE-1")
    (locked,) = fetch(worker_account)
    services.external_task_complete(user=worker_account, external_task_id=locked.external_task_id, worker_id="worker-1")

    with pytest.raises(Conflict) as refused:
        services.external_task_complete(
            user=worker_account, external_task_id=locked.external_task_id, worker_id="worker-1"
        )

    assert refused.value.code == "external_task_not_active"


def test_an_expired_lock_returns_the_item_to_the_pool_for_another_worker(
    start_records_check, worker_account, other_worker_account
):
    start_records_check("CASE-1")
    (locked,) = fetch(worker_account, "worker-1")
    ExternalTask.objects.filter(pk=locked.external_task_id).update(
        lock_expires_at=timezone.now() - timedelta(seconds=1)
    )

    (again,) = fetch(other_worker_account, "worker-2")

    assert again.external_task_id == locked.external_task_id
    with pytest.raises(Conflict):
        services.external_task_complete(
            user=worker_account, external_task_id=locked.external_task_id, worker_id="worker-1"
        )
    services.external_task_complete(
        user=other_worker_account, external_task_id=locked.external_task_id, worker_id="worker-2"
    )


def test_a_failure_with_retries_left_releases_the_item_after_its_retry_timeout(start_records_check, worker_account):
    start_records_check("CASE-1")
    (locked,) = fetch(worker_account)

    services.external_task_fail(
        user=worker_account,
        external_task_id=locked.external_task_id,
        worker_id="worker-1",
        error_message="registry down",
        retries=2,
        retry_timeout_ms=60_000,
    )

    assert fetch(worker_account) == []
    ExternalTask.objects.filter(pk=locked.external_task_id).update(retry_at=timezone.now() - timedelta(seconds=1))
    (again,) = fetch(worker_account)
    assert (again.retries, again.error_message) == (2, "registry down")
    assert not ProcessIncident.objects.exists()


def test_a_failure_with_no_retries_left_raises_an_incident_and_a_retry_returns_the_item(
    start_records_check, worker_account
):
    instance = start_records_check("CASE-1")
    (locked,) = fetch(worker_account)

    services.external_task_fail(
        user=worker_account,
        external_task_id=locked.external_task_id,
        worker_id="worker-1",
        error_message="registry refused",
        retries=0,
    )

    incident = ProcessIncident.objects.get(process_instance=instance, resolved_at__isnull=True)
    assert (incident.step, incident.external_task_id, incident.element_id, incident.message) == (
        IncidentStep.EXTERNAL_TASK,
        locked.external_task_id,
        "Activity_records_check",
        "registry refused",
    )
    assert fetch(worker_account) == []

    services.external_task_retry(user=worker_account, external_task_id=locked.external_task_id, retries=3)

    incident.refresh_from_db()
    assert incident.resolved_at is not None and incident.resolved_by == worker_account
    (again,) = fetch(worker_account)
    assert again.retries == 3


def test_a_bpmn_error_no_boundary_event_catches_is_refused_with_422_and_the_lock_kept(
    start_records_check, worker_account
):
    start_records_check("CASE-1")
    (locked,) = fetch(worker_account)

    with pytest.raises(services.Unprocessable) as refused:
        services.external_task_bpmn_error(
            user=worker_account, external_task_id=locked.external_task_id, worker_id="worker-1", error_code="NO_RECORD"
        )

    assert refused.value.code == "bpmn_error_not_caught" and refused.value.http_status == 422
    assert "no error boundary event" in refused.value.detail
    assert ExternalTask.objects.get(pk=locked.external_task_id).worker_id == "worker-1"


def test_only_the_lock_holder_extends_the_lock(start_records_check, worker_account, other_worker_account):
    start_records_check("CASE-1")
    (locked,) = fetch(worker_account)

    item = services.external_task_extend_lock(
        user=worker_account, external_task_id=locked.external_task_id, worker_id="worker-1", new_duration_ms=3_600_000
    )
    assert item.lock_expires_at > locked.lock_expires_at
    with pytest.raises(Conflict):
        services.external_task_extend_lock(
            user=other_worker_account, external_task_id=locked.external_task_id, worker_id="worker-2", new_duration_ms=1
        )


def test_unlock_frees_the_item_at_once(start_records_check, worker_account, other_worker_account):
    start_records_check("CASE-1")
    (locked,) = fetch(worker_account)

    services.external_task_unlock(user=worker_account, external_task_id=locked.external_task_id)

    assert [i.external_task_id for i in fetch(other_worker_account, "worker-2")] == [locked.external_task_id]


def test_an_account_without_the_permission_may_not_fetch_or_complete(
    start_records_check, worker_account, supervisor_sam
):
    start_records_check("CASE-1")
    (locked,) = fetch(worker_account)

    with pytest.raises(PermissionDenied):
        fetch(supervisor_sam)
    with pytest.raises(PermissionDenied):
        services.external_task_complete(
            user=supervisor_sam, external_task_id=locked.external_task_id, worker_id="worker-1"
        )


def test_a_superuser_without_the_explicit_permission_is_no_worker(start_records_check, demo_org):
    from tests.factories import UserFactory

    root = UserFactory(username="root", is_superuser=True, is_staff=True)

    assert not services.may_work_external_tasks(root)


def test_items_of_a_suspended_instance_are_not_fetched(start_records_check, worker_account):
    instance = start_records_check("CASE-1")
    type(instance).objects.filter(pk=instance.pk).update(status=ProcessStatus.SUSPENDED)

    assert fetch(worker_account) == []


def test_cancelling_the_instance_cancels_its_external_task(start_records_check, supervisor_sam):
    instance = start_records_check("CASE-1")
    item = ExternalTask.objects.get(process_instance=instance)
    # cancel needs a supervisor of one of the instance's queues: give it a review task in intake first
    WorkflowTask.objects.create(process_instance=instance, name="Side task", queue_id="intake")

    workflows.process_cancel(user=supervisor_sam, process_instance_id=instance.pk)

    item.refresh_from_db()
    assert item.status == ExternalTaskStatus.CANCELLED
    assert events(item.pk)[-1] == ExternalTaskEventType.CANCELLED
