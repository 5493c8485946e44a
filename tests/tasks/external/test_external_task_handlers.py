"""Python handlers of external task topics: run on a real Celery worker, completing or failing their items."""

import pytest
from celery import current_app

from tasks.external import handlers
from tasks.models import ExternalTask, ExternalTaskHistory, ExternalTaskStatus, WorkflowTask
from tests.factories import UserFactory
from tests.project.test_celery_beat import Worker, wait_for

from .conftest import grant_worker

HANDLER_MODULE = "tests.tasks.external.handlers_for_tests"
HANDLER_ACCOUNT = "celery-handlers"


@pytest.fixture
def handler_settings(settings):
    settings.EXTERNAL_TASK_HANDLER_MODULES = [HANDLER_MODULE]
    settings.EXTERNAL_TASK_HANDLER_ACCOUNT = HANDLER_ACCOUNT
    return settings


@pytest.fixture
def handler_account(demo_org):
    account = UserFactory(username=HANDLER_ACCOUNT)
    grant_worker(account)
    return account


def lock_for_handlers(account):
    from tasks.external import services

    (item,) = services.external_tasks_fetch_and_lock(
        user=account,
        worker_id=handlers.handler_worker_id(),
        topics=[services.TopicRequest(topic_name="records-check", lock_duration_ms=60_000)],
        max_tasks=1,
    )
    return item


@pytest.mark.django_db
def test_only_the_modules_the_setting_lists_register_handlers(handler_settings):
    from tasks.external.registry import registered_handlers

    assert set(registered_handlers()) == {"records-check"}
    handler_settings.EXTERNAL_TASK_HANDLER_MODULES = []
    assert registered_handlers() == {}


@pytest.mark.django_db
def test_a_handler_that_raises_fails_its_item_with_one_retry_fewer(
    handler_settings, handler_account, start_records_check
):
    start_records_check("CASE-1", registry_down=True)
    item = lock_for_handlers(handler_account)

    outcome = handlers.external_task_handler_run(
        external_task_id=item.external_task_id,
        topic_name=item.topic_name,
        business_key=item.business_key,
        variables=item.variables,
        retries=item.retries,
        worker_id=item.worker_id,
    )

    stored = ExternalTask.objects.get(pk=item.external_task_id)
    assert outcome == "failed"
    assert stored.retries == handlers.DEFAULT_HANDLER_RETRIES - 1
    assert stored.error_message == "ConnectionError: records registry unreachable"
    assert ExternalTaskHistory.objects.filter(external_task=stored, actor=handler_account, event_type="FAILED").exists()


@pytest.mark.slow
def test_a_celery_worker_runs_the_handler_of_a_new_item_and_the_instance_moves_on(
    committed_db, handler_settings, test_database_url
):
    from entitlements.models import User
    from tasks.bpmn import workflows

    from .conftest import RECORDS_CHECK_FILE

    account = UserFactory(username=HANDLER_ACCOUNT)
    grant_worker(account)
    supervisor = User.objects.get(username="supervisor")
    workflows.definition_deploy(user=supervisor, bpmn_xml=RECORDS_CHECK_FILE.read_text())
    current_app.control.purge()  # messages other runs left in this worktree's broker would come first
    worker = Worker(test_database_url)
    worker.env.update(EXTERNAL_TASK_HANDLER_MODULES=HANDLER_MODULE, EXTERNAL_TASK_HANDLER_ACCOUNT=HANDLER_ACCOUNT)
    worker.start()
    try:
        # The commit sends the dispatch job: the worker locks the item and runs the handler.
        instance = workflows.process_start(user=supervisor, process_key="records_check", business_key="CASE-77")
        done = wait_for(
            lambda: ExternalTask.objects.filter(process_instance=instance, status=ExternalTaskStatus.COMPLETED).exists()
        )
        assert done, worker.stop()[-3000:]
    finally:
        worker.stop()
    instance.refresh_from_db()
    assert instance.variables["records_found"] == len("CASE-77")
    assert WorkflowTask.objects.filter(process_instance=instance, name="Review records").exists()
    item = ExternalTask.objects.get(process_instance=instance)
    assert item.locked_by == account and item.worker_id.startswith("celery@")
