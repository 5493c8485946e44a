"""The summary beat job through a real Celery worker: it fans out one send job per supervisor, each delivered over
SMTP to a real receiver (tests/tasks/conftest.py: smtp). Not in a test transaction: the worker reads committed data."""

import pytest

from tests.project.test_celery_beat import Worker, wait_for


@pytest.mark.slow
def test_the_beat_job_fans_out_and_a_worker_delivers_each_summary_over_smtp(committed_db, test_database_url, smtp):
    from tasks.jobs import send_summaries

    worker = Worker(test_database_url)
    worker.env.update(
        EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp.port), EMAIL_USE_TLS="false", EMAIL_USE_SSL="false", EMAIL_URL=""
    )
    worker.start()
    try:
        send_summaries.delay("weekly")
        assert wait_for(lambda: len(smtp.messages) >= 1), worker.stop()[-3000:]
    finally:
        output = worker.stop()
    # The demo's one supervisor with an address; no caseworker supervises a queue.
    assert [recipients for recipients, _ in smtp.messages] == [["supervisor@example.org"]], output[-3000:]
    assert smtp.messages[0][1]["Subject"].startswith("Weekly summary of your queues")
