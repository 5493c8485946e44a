"""Supervisors set a queue's aging and express lane (PATCH /api/queues/{name}/, queues/services.py)."""

import pytest

from queues.models import WorkflowQueue

pytestmark = pytest.mark.django_db

URL = "/api/queues/intake/"


def test_a_supervisor_sets_the_queues_aging_and_express_lane(api_as, supervisor_sam):
    response = api_as(supervisor_sam).patch(
        URL,
        {"aging_enabled": True, "priority_weight": 3, "express_threshold": 90, "express_share_percent": 25},
        format="json",
    )

    assert response.status_code == 200, response.json()
    queue = WorkflowQueue.objects.get(queue_name="intake")
    assert (queue.aging_enabled, queue.priority_weight, queue.express_threshold, queue.express_share_percent) == (
        True,
        3,
        90,
        25,
    )
    assert response.json()["express_threshold"] == 90


def test_the_queue_list_shows_the_settings(api_as, supervisor_sam):
    WorkflowQueue.objects.filter(queue_name="intake").update(express_threshold=80, express_share_percent=40)

    queues = {q["queue_name"]: q for q in api_as(supervisor_sam).get("/api/queues/").json()}

    assert queues["intake"]["express_threshold"] == 80 and queues["intake"]["express_share_percent"] == 40
    assert queues["intake"]["aging_enabled"] is False


def test_an_express_lane_can_be_removed(api_as, supervisor_sam):
    WorkflowQueue.objects.filter(queue_name="intake").update(express_threshold=80)

    response = api_as(supervisor_sam).patch(URL, {"express_threshold": None}, format="json")

    assert response.status_code == 200
    assert WorkflowQueue.objects.get(queue_name="intake").express_threshold is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"express_threshold": 0}, "express_threshold"),
        ({"express_threshold": 101}, "express_threshold"),
        ({"express_share_percent": 0}, "express_share_percent"),
        ({"express_share_percent": 150}, "express_share_percent"),
        ({"priority_weight": -1}, "priority_weight"),
        ({"aging_enabled": "perhaps"}, "aging_enabled"),
        ({"express_threshold": "high"}, "express_threshold"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(api_as, supervisor_sam, body, field):
    response = api_as(supervisor_sam).patch(URL, body, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"], response.json()
    assert WorkflowQueue.objects.get(queue_name="intake").express_share_percent == 50  # unchanged


def test_a_body_that_is_not_an_object_is_refused(api_as, supervisor_sam):
    response = api_as(supervisor_sam).patch(URL, [1, 2], format="json")
    assert response.status_code == 400


def test_a_caseworker_of_the_queue_may_not_set_it(api_as, caseworker_alice):
    response = api_as(caseworker_alice).patch(URL, {"express_threshold": 90}, format="json")

    assert response.status_code == 404
    assert WorkflowQueue.objects.get(queue_name="intake").express_threshold is None


def test_an_unknown_queue_is_not_found(api_as, supervisor_sam):
    response = api_as(supervisor_sam).patch("/api/queues/no-such-queue/", {"express_threshold": 90}, format="json")
    assert response.status_code == 404


def test_the_service_refuses_what_is_not_a_priority_setting(supervisor_sam):
    from core.errors import InvalidInput
    from queues.services import queue_priority_settings_set

    with pytest.raises(InvalidInput) as refused:
        queue_priority_settings_set(user=supervisor_sam, queue_name="intake", max_capacity=1)
    assert "max_capacity" in refused.value.fields


@pytest.mark.parametrize(
    "changes, field",
    [({"express_threshold": 500}, "express_threshold"), ({"express_share_percent": 0}, "express_share_percent")],
)
def test_the_queue_admin_form_refuses_bad_lane_settings_naming_the_field(demo_org, changes, field):
    from django.forms.models import model_to_dict

    from queues.admin import WorkflowQueueForm

    queue = WorkflowQueue.objects.get(queue_name="intake")
    data = {k: v for k, v in model_to_dict(queue).items() if v is not None}
    data.update(escalation_rules="[]", sla_priority_hours="{}", required_skills="", **changes)

    form = WorkflowQueueForm(data=data, instance=queue)

    assert not form.is_valid()
    assert field in form.errors, form.errors


def test_the_queue_admin_form_saves_an_express_lane(demo_org):
    from django.forms.models import model_to_dict

    from queues.admin import WorkflowQueueForm

    queue = WorkflowQueue.objects.get(queue_name="intake")
    data = {k: v for k, v in model_to_dict(queue).items() if v is not None}
    data.update(escalation_rules="[]", sla_priority_hours="{}", required_skills="", express_threshold=85)
    data["aging_enabled"] = True

    form = WorkflowQueueForm(data=data, instance=queue)

    assert form.is_valid(), form.errors
    form.save()
    queue.refresh_from_db()
    assert queue.express_threshold == 85 and queue.aging_enabled
