"""The supervisor can browse every model of the system in admin."""
import pytest
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db

OUR_APPS = {"entitlements", "queues", "tasks", "cases"}


@pytest.fixture
def supervisor_client(client, supervisor_sam):
    client.force_login(supervisor_sam)
    return client


def our_models():
    return sorted(
        (model._meta.app_label, model._meta.model_name)
        for model in admin.site._registry
        if model._meta.app_label in OUR_APPS
    )


def test_every_model_of_every_app_is_in_admin():
    registered = {app for app, _ in our_models()}
    assert registered == OUR_APPS
    assert len(our_models()) >= 14


@pytest.mark.parametrize("app_label,model_name", our_models())
def test_supervisor_opens_each_changelist(supervisor_client, app_label, model_name):
    response = supervisor_client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))
    assert response.status_code == 200


def test_changelists_show_the_demo_organisation(supervisor_client):
    body = supervisor_client.get(reverse("admin:queues_workflowqueue_changelist")).content.decode()
    for name in ["intake", "triage", "fraud-investigation", "legal-review", "escalations"]:
        assert name in body
    body = supervisor_client.get(reverse("admin:entitlements_department_changelist")).content.decode()
    for name in ["Investigations", "Fraud", "Misconduct", "Legal"]:
        assert name in body


def test_caseworker_cannot_reach_admin(client, caseworker_alice):
    client.force_login(caseworker_alice)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
