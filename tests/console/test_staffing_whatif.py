"""The console's staffing what-if page (tasks/console/pages.py): form errors, the pending run's progress, the
charted result, past runs; refused to anyone but the queue's supervisors."""

from __future__ import annotations

import pytest

from entitlements.row_scope import system_scope
from tasks.forecast.whatif_services import whatif_run_execute
from tasks.models import WhatIfRun
from tests.tasks.forecast.test_whatif_runs import generated_queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def history_queue(demo_org, supervisor_sam):
    return generated_queue(supervisor_sam)


def page(queue):
    return f"/admin/staffing-whatif/{queue}/"


def test_the_index_lists_the_queues_a_supervisor_supervises(client, supervisor_sam, history_queue):
    client.force_login(supervisor_sam)
    response = client.get("/admin/staffing-whatif/")
    assert response.status_code == 200
    assert f'href="{page(history_queue)}"' in response.content.decode()


def test_an_invalid_scenario_is_shown_again_with_its_field_errors(client, supervisor_sam, history_queue):
    client.force_login(supervisor_sam)
    response = client.post(page(history_queue), {"delta": "99", "horizon_days": "14", "specialists": "review two"})
    assert response.status_code == 200
    form = response.context["form"]
    assert set(form.errors) == {"delta", "specialists"}
    assert "Line 1: write type=count" in response.content.decode()
    response = client.post(page(history_queue), {"delta": "0", "horizon_days": "14", "specialists": "audit=1"})
    assert "No task of type audit" in response.context["form"].errors["specialists"][0]
    with system_scope():
        assert not WhatIfRun.objects.filter(queue_name=history_queue).exists()


def test_a_run_is_asked_then_shows_its_progress_and_then_its_chart(client, supervisor_sam, history_queue):
    client.force_login(supervisor_sam)
    response = client.post(page(history_queue), {"delta": "2", "horizon_days": "14", "specialists": "review=1"})
    assert response.status_code == 302
    with system_scope():
        run = WhatIfRun.objects.get(queue_name=history_queue)
    assert response["Location"].endswith(f"?run={run.pk}")
    assert run.parameters == {"delta": 2, "horizon_days": 14, "specialists": {"review": 1}}

    pending = client.get(response["Location"]).content.decode()
    assert '<meta http-equiv="refresh"' in pending and 'id="whatif-progress"' in pending

    with system_scope():
        whatif_run_execute(run_id=run.pk)
    done = client.get(response["Location"]).content.decode()
    assert '<meta http-equiv="refresh"' not in done
    assert 'class="band"' in done and 'class="baseline"' in done  # the band, and the queue as staffed now
    assert 'id="whatif-figures"' in done and "SLA compliance" in done
    assert f"#{run.pk}" in done  # listed among the runs


def test_the_page_is_refused_to_staff_who_do_not_supervise_the_queue(client, caseworker_alice, history_queue):
    caseworker_alice.is_staff = True
    caseworker_alice.save(update_fields=["is_staff"])
    client.force_login(caseworker_alice)
    assert client.get("/admin/staffing-whatif/").status_code == 403
    assert client.get(page(history_queue)).status_code == 404
    assert client.post(page(history_queue), {"delta": "1", "horizon_days": "14"}).status_code == 404
    with system_scope():
        assert not WhatIfRun.objects.filter(queue_name=history_queue).exists()


def test_the_page_sends_a_caseworker_to_the_login(client, caseworker_alice, history_queue):
    client.force_login(caseworker_alice)
    assert client.get(page(history_queue)).status_code == 302


def test_the_page_reads_a_bounded_number_of_queries_whatever_the_runs(
    client, supervisor_sam, history_queue, django_assert_max_num_queries
):
    with system_scope():
        WhatIfRun.objects.bulk_create(
            WhatIfRun(
                queue_name=history_queue, requested_by=supervisor_sam, parameters={"delta": n, "horizon_days": 14}
            )
            for n in range(15)
        )
    client.force_login(supervisor_sam)
    with django_assert_max_num_queries(12):
        response = client.get(page(history_queue))
    assert response.content.decode().count('href="?run=') == 15
