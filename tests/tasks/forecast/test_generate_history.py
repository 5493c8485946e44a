"""generate_history: simulated queue history with known rates, stored in the real tables and forecast from there."""

import io
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from entitlements.access import users_with
from entitlements.row_scope import system_scope
from queues.models import WorkflowQueue
from tasks.forecast.history import TASK_TYPES, WEEKDAY_FACTORS, generate
from tasks.forecast.services import task_risks_refresh
from tasks.models import TaskHistory, TaskRisk, WorkflowTask


def test_generated_arrivals_follow_the_weekly_seasonality_and_service_the_task_types():
    history = generate(weeks=8, seed=5)
    by_weekday = Counter(int(task.created // 8) % 5 for task in history.tasks)
    assert by_weekday[0] == max(by_weekday.values()) and by_weekday[4] == min(by_weekday.values())
    assert WEEKDAY_FACTORS[0] > WEEKDAY_FACTORS[4]
    service = {
        kind.key: [t.completed - t.claimed for t in history.tasks if t.task_type == kind and t.completed]
        for kind in TASK_TYPES
    }
    means = {key: sum(values) / len(values) for key, values in service.items()}
    assert means["triage"] < means["approval"] < means["review"]
    assert len({len(staff) for staff in history.on_shift.values()}) > 1  # staffing varies


def test_generated_history_is_stored_and_the_forecast_runs_on_it(demo_org):
    with system_scope():
        call_command(
            "generate_history",
            "--queue",
            "gen-test",
            "--weeks",
            "3",
            "--department",
            "investigations",
            stdout=io.StringIO(),
        )
        queue = WorkflowQueue.objects.get(queue_name="gen-test")
        tasks = WorkflowTask.objects.filter(queue=queue)
        assert tasks.filter(status="COMPLETED").count() > 100
        assert (
            TaskHistory.objects.filter(task__queue=queue, event_type="COMPLETED").count()
            == tasks.filter(status="COMPLETED").count()
        )
        assert users_with(capability="work", queue=queue).count() == 8
        assert queue.current_load == tasks.filter(status="CLAIMED").count()

        refresh = task_risks_refresh(queue_name="gen-test")
        assert refresh.tasks == tasks.filter(status__in=["OPEN", "CLAIMED"]).count()
        assert TaskRisk.objects.filter(queue_name="gen-test").count() == refresh.tasks

        with pytest.raises(CommandError, match="already holds tasks"):
            call_command("generate_history", "--queue", "gen-test", "--weeks", "1", stdout=io.StringIO())


def test_more_daily_tasks_make_a_busier_history():
    quiet, busy = generate(weeks=4, seed=3, daily_tasks=20), generate(weeks=4, seed=3, daily_tasks=60)
    assert 2.5 < len(busy.tasks) / len(quiet.tasks) < 3.5
    assert sum(t.breached for t in busy.tasks) > sum(t.breached for t in quiet.tasks)
