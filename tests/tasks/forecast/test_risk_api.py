"""The task API's forecast fields (breach_probability, expected_completion_at, at_risk), and who may see them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from entitlements.row_scope import system_scope
from tasks.models import TaskRisk


@pytest.fixture
def forecast_task(make_task):
    task = make_task(queue_name="intake", name="Forecast me")
    with system_scope():
        TaskRisk.objects.create(
            task_id=task.task_id,
            queue_name="intake",
            breach_probability=0.8,
            expected_completion_at=timezone.now() + timedelta(hours=5),
            computed_at=timezone.now(),
        )
    return task


def test_task_api_shows_the_forecast_of_a_task_in_the_callers_queues(api_as, caseworker_alice, forecast_task):
    body = api_as(caseworker_alice).get(f"/api/workflow/tasks/{forecast_task.task_id}").json()

    assert body["breach_probability"] == 0.8
    assert body["at_risk"] is True
    assert body["expected_completion_at"] is not None


def test_task_list_carries_the_forecast(api_as, caseworker_alice, forecast_task):
    rows = api_as(caseworker_alice).get("/api/workflow/tasks/", {"queue": "intake"}).json()["results"]

    row = next(r for r in rows if r["id"] == forecast_task.task_id)
    assert (row["breach_probability"], row["at_risk"]) == (0.8, True)


def test_a_task_not_yet_forecast_has_no_risk(api_as, caseworker_alice, make_task):
    task = make_task(queue_name="intake", name="New")
    body = api_as(caseworker_alice).get(f"/api/workflow/tasks/{task.task_id}").json()

    assert (body["breach_probability"], body["expected_completion_at"], body["at_risk"]) == (None, None, False)


def test_the_forecast_of_a_task_outside_the_callers_queues_is_not_exposed(api_as, legal_reviewer_carol, forecast_task):
    response = api_as(legal_reviewer_carol).get(f"/api/workflow/tasks/{forecast_task.task_id}")

    assert response.status_code == 404
    assert "breach_probability" not in response.json()


def test_forecast_on_demand_computes_and_returns_the_tasks_risk(api_as, caseworker_alice, make_task):
    task = make_task(queue_name="intake", name="Ask now", due_date=timezone.now() + timedelta(minutes=30))

    response = api_as(caseworker_alice).post(f"/api/workflow/tasks/{task.task_id}/forecast")

    assert response.status_code == 200
    # Nobody has worked intake lately: the task cannot be reached before it is due, nor said when it will be.
    assert (response.json()["breach_probability"], response.json()["expected_completion_at"]) == (1.0, None)
    with system_scope():
        assert TaskRisk.objects.filter(task_id=task.task_id).exists()


def test_forecast_on_demand_of_a_task_outside_the_callers_queues_is_404_and_computes_nothing(
    api_as, legal_reviewer_carol, make_task
):
    task = make_task(queue_name="intake", name="Not hers")

    response = api_as(legal_reviewer_carol).post(f"/api/workflow/tasks/{task.task_id}/forecast")

    assert response.status_code == 404
    assert "breach_probability" not in response.json()
    with system_scope():
        assert not TaskRisk.objects.filter(queue_name="intake").exists()


def test_forecast_on_demand_of_a_finished_task_is_a_conflict(api_as, caseworker_alice, make_task):
    from tasks.models import WorkflowTask

    task = make_task(queue_name="intake", name="Done")
    WorkflowTask.objects.filter(pk=task.pk).update(status="CANCELLED")

    response = api_as(caseworker_alice).post(f"/api/workflow/tasks/{task.task_id}/forecast")

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


@pytest.mark.usefixtures("row_security_enforced")
def test_row_security_shows_a_user_only_the_forecasts_of_queues_they_may_view(
    caseworker_alice, legal_reviewer_carol, forecast_task
):
    from entitlements.row_scope import acting_as

    with acting_as(caseworker_alice):
        assert TaskRisk.objects.filter(task_id=forecast_task.task_id).exists()
    with acting_as(legal_reviewer_carol):
        assert not TaskRisk.objects.filter(task_id=forecast_task.task_id).exists()
