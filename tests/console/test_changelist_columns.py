"""The console's lists read only what their columns show: a workflow's engine state and BPMN, the JSON documents of
tasks and instances and the sealed text of cases stay in the database (decrypted on load, the sealed fields would
cost a decryption per row), on the list as on the rows it reaches through list_select_related. A row's own page
reads them as usual."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from entitlements.models import User
from tests.pages.conftest import open_fraud_case
from tests.pages.test_browser import deploy_demo_workflow

pytestmark = pytest.mark.django_db

ENGINE = ('"engine_state"', '"bpmn_xml"', '"engine_spec"')
SEALED = ('"description"', '"allegations"')
LISTS = {
    "/admin/tasks/workflowdefinition/": ('"bpmn_xml"', '"engine_spec"'),
    "/admin/tasks/processinstance/": (*ENGINE, '"variables"'),
    "/admin/tasks/workflowtask/": ('"variables"', '"form_fields"'),
    "/admin/cases/case/": SEALED,
    "/admin/cases/caseworkflowmapping/": ('"routing_history"', '"title"', *SEALED, *ENGINE, '"variables"'),
}


@pytest.mark.parametrize("url", list(LISTS))
def test_a_console_list_reads_only_what_it_shows(client, supervisor_sam, url):
    deploy_demo_workflow(supervisor_sam)
    case = open_fraud_case(User.objects.get(username="alice"))
    client.force_login(supervisor_sam)

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)

    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1
    if "cases" in url or "processinstance" in url:
        assert case.case_number in response.content.decode()
    # EXPLAIN (an estimated count) plans a statement and reads no row. What a statement loads is its select list:
    # a filter may test a column (the supervisor's rule reads the routing history's queues) without loading it.
    loaded = [
        query["sql"].split(" FROM ", 1)[0]
        for query in captured.captured_queries
        if not query["sql"].startswith("EXPLAIN")
    ]
    assert not [columns for columns in loaded if any(column in columns for column in LISTS[url])], loaded
