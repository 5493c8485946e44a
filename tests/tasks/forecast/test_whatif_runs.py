"""Staffing what-if runs (tasks/forecast/whatif_services.py): asked by a queue's supervisors only, simulated by the
job on the queue's stored history with progress on the row, kept behind row-level security."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from celery import current_app
from django.db import connection
from django.utils import timezone

from core.errors import InvalidInput, NotFound
from entitlements.row_scope import acting_as, system_scope
from entitlements.services import role_assignment_grant, role_save
from tasks.forecast.history_load import history_generate
from tasks.forecast.whatif_services import whatif_run_execute, whatif_run_for_user, whatif_run_request
from tasks.models import WhatIfRun, WhatIfStatus
from tests.project.test_celery_beat import Worker, wait_for

QUEUE = "whatif-history"


def generated_queue(supervisor):
    """Five weeks of generated history in a new queue, which `supervisor` supervises."""
    with system_scope():
        history_generate(queue_name=QUEUE, weeks=5, seed=3, department="investigations")
        role = role_save(
            role_code="whatif-supervisor",
            name="What-if supervisor",
            queue_names=[QUEUE],
            permissions=["view", "supervise"],
        )
        role_assignment_grant(user=supervisor, role=role, valid_from=timezone.now() - timedelta(days=1))
    return QUEUE


def last_working_midday() -> datetime:
    """12:30 in London on the latest weekday at or before now (the demo calendar: Mon–Fri 09:00–17:00 London)."""
    london = ZoneInfo("Europe/London")
    moment = timezone.now().astimezone(london)
    day = moment.date() if moment.time() >= time(12, 30) else moment.date() - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return datetime.combine(day, time(12, 30), tzinfo=london)


@pytest.fixture
def history_queue(demo_org, supervisor_sam):
    return generated_queue(supervisor_sam)


@pytest.mark.django_db
def test_a_supervisor_asks_and_the_run_waits_queued_for_the_job(
    history_queue, supervisor_sam, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        run = whatif_run_request(user=supervisor_sam, queue_name=history_queue, delta=2, horizon_days=14)
    assert len(callbacks) == 1  # the job is sent after commit
    assert run.status == WhatIfStatus.QUEUED and run.progress == 0 and run.requested_by == supervisor_sam
    assert run.parameters == {"delta": 2, "horizon_days": 14, "specialists": {}}


@pytest.mark.django_db
def test_a_caseworker_of_the_queue_may_not_ask_nor_read_its_runs(history_queue, supervisor_sam, caseworker_alice):
    run = whatif_run_request(user=supervisor_sam, queue_name=history_queue)
    with pytest.raises(NotFound):
        whatif_run_request(user=caseworker_alice, queue_name=history_queue)
    with pytest.raises(NotFound):
        whatif_run_for_user(user=caseworker_alice, queue_name=history_queue, run_id=run.pk)
    assert WhatIfRun.objects.filter(queue_name=history_queue).count() == 1


@pytest.mark.django_db
def test_a_supervisor_of_other_queues_is_refused(demo_org, supervisor_sam):
    # Sam supervises the demo queues, not this one (generated with nobody supervising it).
    with system_scope():
        history_generate(queue_name=QUEUE, weeks=1, seed=1, department="investigations")
    with pytest.raises(NotFound):
        whatif_run_request(user=supervisor_sam, queue_name=QUEUE)


@pytest.mark.django_db
def test_row_security_shows_runs_to_the_queues_supervisors_only(
    history_queue, supervisor_sam, caseworker_alice, row_security_enforced
):
    run = whatif_run_request(user=supervisor_sam, queue_name=history_queue)
    with acting_as(supervisor_sam):
        assert WhatIfRun.objects.filter(pk=run.pk).exists()
    with acting_as(caseworker_alice):
        assert not WhatIfRun.objects.filter(pk=run.pk).exists()
        with connection.cursor() as cursor, pytest.raises(Exception, match="row-level security"):
            with __import__("django.db", fromlist=["transaction"]).transaction.atomic():
                cursor.execute(
                    "INSERT INTO flowable.whatif_runs (queue_name, parameters, status, progress, error, created_at) "
                    "VALUES (%s, '{}', 'QUEUED', 0, '', now())",
                    [history_queue],
                )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"delta": 99}, "delta"),
        ({"delta": True}, "delta"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"horizon_days": 57}, "horizon_days"),
        ({"specialists": {"review": -1}}, "specialists"),
        ({"specialists": {"no-such-type": 1}}, "specialists"),
    ],
)
def test_an_invalid_scenario_names_its_field(history_queue, supervisor_sam, arguments, field):
    with pytest.raises(InvalidInput) as refused:
        whatif_run_request(user=supervisor_sam, queue_name=history_queue, **arguments)
    assert list(refused.value.fields) == [field]


@pytest.mark.django_db
def test_the_job_simulates_the_queue_reports_progress_and_more_staff_wait_less(history_queue, supervisor_sam):
    run = whatif_run_request(user=supervisor_sam, queue_name=history_queue, delta=3, specialists={"review": 1})
    with system_scope():
        # Run in the middle of a working day: the horizon ends two weeks on at the same time of day, not at the
        # close of that day (it did, whenever the suite ran in office hours).
        done = whatif_run_execute(run_id=run.pk, now=last_working_midday())
    assert done.status == WhatIfStatus.DONE and done.progress == 100
    assert done.started_at <= done.finished_at
    result = done.result
    assert result["team"]["scenario"] == result["team"]["observed"] + 4
    scenario, baseline = result["scenario"], result["baseline"]
    assert scenario["replications"] == 30
    # Two weeks of the demo calendar's working hours, one band per business hour.
    assert len(scenario["backlog"]) == pytest.approx(result["hours"], abs=1)
    assert all(p10 <= p50 <= p90 for p10, p50, p90 in scenario["backlog"])
    assert scenario["wait_p90"][1] <= baseline["wait_p90"][1]
    assert scenario["sla_compliance"][1] >= baseline["sla_compliance"][1]
    assert scenario["arrivals"] > 0

    with system_scope():
        again = whatif_run_execute(run_id=run.pk)  # a redelivered message: the finished run is left alone
    assert again.finished_at == done.finished_at


@pytest.mark.slow
def test_a_celery_worker_runs_the_what_if_and_the_row_shows_its_progress(committed_db, test_database_url):
    from entitlements.models import User

    supervisor = User.objects.get(username="supervisor")
    generated_queue(supervisor)
    current_app.control.purge()  # messages other runs left in this worktree's broker would come first
    worker = Worker(test_database_url)
    worker.start()
    try:
        run = whatif_run_request(user=supervisor, queue_name=QUEUE, delta=-1, horizon_days=7)
        seen = []

        def finished():
            with system_scope():
                current = WhatIfRun.objects.get(pk=run.pk)
            seen.append(current.progress)
            return current.status in (WhatIfStatus.DONE, WhatIfStatus.FAILED)

        assert wait_for(finished, seconds=120), worker.stop()[-3000:]
    finally:
        output = worker.stop()
    with system_scope():
        run.refresh_from_db()
    assert run.status == WhatIfStatus.DONE, output[-3000:]
    assert run.result["team"]["scenario"] == run.result["team"]["observed"] - 1
    assert run.progress == 100 and seen == sorted(seen)  # progress only moves forward


@pytest.mark.django_db
def test_a_queue_without_history_simulates_to_an_empty_queue(demo_org, supervisor_sam):
    run = whatif_run_request(user=supervisor_sam, queue_name="legal-review", delta=1, horizon_days=3)
    with system_scope():
        done = whatif_run_execute(run_id=run.pk)
    assert done.status == WhatIfStatus.DONE
    assert done.result["team"] == {"observed": 0, "scenario": 1}
    assert done.result["scenario"]["arrivals"] == 0 and done.result["scenario"]["sla_compliance"] is None


@pytest.mark.django_db
def test_a_failing_run_is_kept_failed_with_its_error(history_queue):
    with system_scope():
        run = WhatIfRun.objects.create(queue_name=history_queue, parameters={})  # no horizon: cannot run
        with pytest.raises(KeyError):
            whatif_run_execute(run_id=run.pk)
        run.refresh_from_db()
    assert run.status == WhatIfStatus.FAILED and run.error.startswith("KeyError") and run.finished_at
