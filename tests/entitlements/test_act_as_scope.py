"""X-On-Behalf-Of only for users inside the scope configured on the acting account; supervisors hold no act-as."""

import pytest
from django.contrib.auth.models import Permission

from entitlements.access import act_as_refusal
from entitlements.models import Department, SecurityEvent, User, WorkflowRole


@pytest.fixture
def intake_task(make_task):
    return make_task("intake", name="Scoped review")


def test_integration_may_not_act_as_a_supervisor(api_as, integration_account, intake_task):
    response = api_as(integration_account).post(
        f"/api/workflow/tasks/{intake_task.pk}/escalate",
        {"priority": 90},
        format="json",
        HTTP_X_ON_BEHALF_OF="supervisor",
    )
    assert response.status_code == 403
    assert "staff" in response.json()["detail"]
    intake_task.refresh_from_db()
    assert intake_task.priority != 90
    denial = SecurityEvent.objects.filter(event_type="PERMISSION_DENIED", actor=integration_account).latest("event_id")
    assert denial.on_behalf_of_username == "supervisor"


def test_integration_acts_for_a_caseworker_in_its_scope(api_as, integration_account, intake_task):
    response = api_as(integration_account).post(
        f"/api/workflow/tasks/{intake_task.pk}/claim", HTTP_X_ON_BEHALF_OF="alice"
    )
    assert response.status_code == 200, response.content
    assert SecurityEvent.objects.filter(
        event_type="ACT_AS", actor=integration_account, on_behalf_of_username="alice"
    ).exists()


def test_scope_covers_child_departments(integration_account, fraud_investigator_bob):
    # bob works in fraud, a child of investigations, which the demo scope names.
    assert act_as_refusal(account=integration_account, target=fraud_investigator_bob) is None


def test_a_user_outside_every_scoped_department_and_role_is_refused(integration_account, caseworker_alice):
    integration_account.act_as_departments.set([Department.objects.get(dept_code="legal")])
    assert "outside the scope" in act_as_refusal(account=integration_account, target=caseworker_alice)


def test_a_scoped_role_held_now_brings_its_holders_into_scope(integration_account, caseworker_alice):
    integration_account.act_as_departments.clear()
    assert act_as_refusal(account=integration_account, target=caseworker_alice) is not None
    integration_account.act_as_roles.set([WorkflowRole.objects.get(role_code="intake-caseworker")])
    assert act_as_refusal(account=integration_account, target=caseworker_alice) is None


def test_staff_are_in_scope_only_when_the_scope_says_so(integration_account, supervisor_sam):
    assert "staff" in act_as_refusal(account=integration_account, target=supervisor_sam)
    integration_account.act_as_staff = True
    integration_account.save()
    assert act_as_refusal(account=integration_account, target=supervisor_sam) is None


def test_an_account_with_no_scope_acts_for_nobody(api_as, demo_org, intake_task):
    robot = User.objects.create_user("robot", is_service_account=True)
    robot.user_permissions.add(Permission.objects.get(codename="act_on_behalf"))
    response = api_as(User.objects.get(pk=robot.pk)).get("/api/queues/", HTTP_X_ON_BEHALF_OF="alice")
    assert response.status_code == 403 and "outside the scope" in response.json()["detail"]


def test_supervisors_do_not_hold_act_as(api_as, supervisor_sam):
    assert not supervisor_sam.has_perm("entitlements.act_on_behalf")
    response = api_as(supervisor_sam).get("/api/queues/", HTTP_X_ON_BEHALF_OF="alice")
    assert response.status_code == 403


def test_seed_demo_takes_act_as_back_from_an_older_supervisor_console_group(demo_org):
    from django.contrib.auth.models import Group

    from tests.conftest import seed_demo_org

    group = Group.objects.get(name="supervisor-console")
    group.permissions.add(Permission.objects.get(codename="act_on_behalf"))  # as seeds before this fix left it
    seed_demo_org()
    assert not group.permissions.filter(codename="act_on_behalf").exists()
    assert set(User.objects.get(username="integration").act_as_departments.values_list("dept_code", flat=True)) == {
        "investigations",
        "legal",
    }
