"""The demo end to end on a real Celery worker and broker: the seed leaves a records check to the worker, the
worker's handler (cases/records_check.py) completes it, the documents message sent over the API wakes the case, and
the decision table routes it."""

import pytest

from .test_seed_demo import demo_instances, open_tasks, run_seed


@pytest.fixture
def records_check_handler(settings):
    settings.EXTERNAL_TASK_HANDLER_MODULES = ["cases.records_check"]
    return settings


@pytest.mark.slow
def test_a_celery_worker_checks_the_records_a_message_wakes_the_case_and_the_decision_routes_it(
    committed_db, committed_api_as, records_check_handler, test_database_url
):
    from celery import current_app

    from tasks.models import ExternalTask
    from tests.project.test_celery_beat import Worker, wait_for

    current_app.control.purge()  # messages other runs left in this worktree's broker would come first
    worker = Worker(test_database_url)
    worker.env.update(EXTERNAL_TASK_HANDLER_MODULES="cases.records_check")
    worker.start()
    try:
        # The seed's commit sends the handlers' dispatch job: the worker locks case 3's records check and runs it.
        run_seed("--cases", "10")
        case_3 = demo_instances()[3]
        done = wait_for(lambda: ExternalTask.objects.filter(process_instance=case_3, status="COMPLETED").exists())
        assert done, worker.stop()[-3000:]
    finally:
        worker.stop()
    item = ExternalTask.objects.get(process_instance=case_3)
    assert item.worker_id.startswith("celery@") and item.locked_by.username == "celery-external-tasks"
    cases = demo_instances()
    assert cases[3].waiting_messages == ["documents_received"] and open_tasks(cases[3]) == []
    assert "prior_cases" in cases[3].variables

    # The document portal (the integration account) reports the documents of cases 3 and 4.
    portal = committed_api_as("integration")
    for number in (3, 4):
        response = portal.post(
            "/api/workflow/messages",
            {"message_name": "documents_received", "business_key": cases[number].business_key},
            format="json",
        )
        assert response.status_code == 200, response.content
    again = portal.post(
        "/api/workflow/messages",
        {"message_name": "documents_received", "business_key": cases[3].business_key},
        format="json",
    )
    assert again.status_code == 404 and again.json()["code"] == "message_not_correlated"

    cases = demo_instances()
    # 3: fraud with 40,000 at stake: the decision sends it straight to the fraud team; 4: conflict of interest
    # with nothing at stake: to triage.
    assert cases[3].variables["routing"] == {"queue": "fraud-investigation", "priority": "high"}
    assert open_tasks(cases[3]) == [("fraud_investigation", "fraud-investigation")]
    assert cases[4].variables["routing"] == {"queue": "triage", "priority": "normal"}
    assert open_tasks(cases[4]) == [("triage", "triage")]
