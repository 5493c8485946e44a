"""Superuser, staff, groups, permissions and act-as scope change only by superusers, each change audited."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.test import RequestFactory

from core.errors import PermissionDenied
from entitlements.models import Department, SecurityEvent, User
from entitlements.privileges import ActingRequestMiddleware, PrivilegeChangeRefused
from entitlements.services import role_assignment_grant, role_save


def privilege_events(subject: str, field: str):
    return SecurityEvent.objects.filter(event_type="PRIVILEGE_CHANGED", details__subject=subject, details__field=field)


def acting_as(user, change):
    """Run `change()` inside a request served for `user` (as the middleware sees every request)."""
    request = RequestFactory().post("/somewhere/")
    request.user = user
    outcome = {}

    def view(req):
        with transaction.atomic():  # a refused change rolls back here, as the request's transaction would
            outcome["value"] = change()
        return None

    ActingRequestMiddleware(view)(request)
    return outcome.get("value")


@pytest.fixture
def superuser(demo_org):
    return User.objects.create_superuser("root", "root@example.org", "root-pass-123")


def user_change_form(user: User, **overrides) -> dict:
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "max_concurrent_tasks": user.max_concurrent_tasks,
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    if user.department_id:
        data["department"] = user.department_id
    if user.is_staff:
        data["is_staff"] = "on"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_staff_supervisor_cannot_make_themselves_superuser_in_admin(client, supervisor_sam):
    client.force_login(supervisor_sam)
    url = f"/admin/entitlements/user/{supervisor_sam.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="is_superuser"' not in page.content.decode()  # shown read-only
    act_as = Permission.objects.get(codename="act_on_behalf")
    client.post(url, user_change_form(supervisor_sam, is_superuser="on", user_permissions=[act_as.pk]))
    supervisor_sam.refresh_from_db()
    assert not supervisor_sam.is_superuser
    assert not supervisor_sam.user_permissions.filter(codename="act_on_behalf").exists()
    assert not privilege_events("user:supervisor", "is_superuser").exists()


def test_a_non_superuser_in_a_request_is_refused_and_nothing_is_saved(supervisor_sam, caseworker_alice):
    def escalate():
        caseworker_alice.is_superuser = True
        caseworker_alice.save()

    with pytest.raises(PrivilegeChangeRefused):
        acting_as(supervisor_sam, escalate)
    assert not User.objects.get(pk=caseworker_alice.pk).is_superuser


@pytest.mark.parametrize(
    "change",
    [
        lambda user: user.groups.add(Group.objects.get(name="supervisor-console")),
        lambda user: user.user_permissions.add(Permission.objects.get(codename="act_on_behalf")),
        lambda user: user.act_as_departments.add(Department.objects.get(dept_code="legal")),
        lambda user: Group.objects.get(name="supervisor-console").permissions.add(
            Permission.objects.get(codename="act_on_behalf")
        ),
        lambda user: Group.objects.get(name="supervisor-console").user_set.add(user),
    ],
    ids=["groups", "user_permissions", "act_as_scope", "group_permissions", "groups_from_the_group_side"],
)
def test_a_non_superuser_may_not_change_many_to_many_privileges(supervisor_sam, caseworker_alice, change):
    before = set(caseworker_alice.groups.all()), set(caseworker_alice.user_permissions.all())
    with pytest.raises(PermissionDenied):
        acting_as(supervisor_sam, lambda: change(caseworker_alice))
    assert (set(caseworker_alice.groups.all()), set(caseworker_alice.user_permissions.all())) == before
    assert not caseworker_alice.act_as_departments.exists()
    assert not Group.objects.get(name="supervisor-console").permissions.filter(codename="act_on_behalf").exists()


def test_superuser_grants_superuser_in_admin_and_the_change_is_audited_with_old_and_new(
    client, superuser, caseworker_alice
):
    client.force_login(superuser)
    act_as = Permission.objects.get(codename="act_on_behalf")
    response = client.post(
        f"/admin/entitlements/user/{caseworker_alice.pk}/change/",
        user_change_form(caseworker_alice, is_superuser="on", user_permissions=[act_as.pk]),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    caseworker_alice.refresh_from_db()
    assert caseworker_alice.is_superuser
    flag = privilege_events("user:alice", "is_superuser").get()
    assert (flag.details["old"], flag.details["new"]) == (False, True)
    assert flag.actor_id == superuser.pk and flag.path.endswith("/change/")
    granted = privilege_events("user:alice", "user_permissions").get()
    assert granted.details["old"] == [] and granted.details["new"] == ["entitlements.act_on_behalf"]


def test_changes_outside_a_request_are_the_systems_and_audited(caseworker_alice):
    caseworker_alice.is_staff = True
    caseworker_alice.save()
    caseworker_alice.groups.add(Group.objects.get(name="supervisor-console"))
    caseworker_alice.groups.clear()
    event = privilege_events("user:alice", "is_staff").get()
    assert event.actor_username == "system" and (event.details["old"], event.details["new"]) == (False, True)
    added, cleared = privilege_events("user:alice", "groups").order_by("event_id")
    assert (added.details["old"], added.details["new"]) == ([], ["supervisor-console"])
    assert (cleared.details["old"], cleared.details["new"]) == (["supervisor-console"], [])


def test_saving_a_user_without_privilege_changes_records_nothing(supervisor_sam, caseworker_alice):
    def rename():
        caseworker_alice.first_name = "Alicia"
        caseworker_alice.save()

    acting_as(supervisor_sam, rename)
    assert User.objects.get(pk=caseworker_alice.pk).first_name == "Alicia"
    assert not SecurityEvent.objects.filter(event_type="PRIVILEGE_CHANGED", details__subject="user:alice").exists()


def test_group_permission_change_is_audited_with_old_and_new(demo_org):
    group = Group.objects.create(name="auditors")
    group.permissions.add(Permission.objects.get(codename="act_on_behalf"))
    event = privilege_events("group:auditors", "permissions").get()
    assert event.details == {
        "subject": "group:auditors",
        "field": "permissions",
        "old": [],
        "new": ["entitlements.act_on_behalf"],
    }


def test_non_superusers_see_privilege_fields_read_only_in_admin(client, supervisor_sam, caseworker_alice):
    client.force_login(supervisor_sam)
    page = client.get(f"/admin/entitlements/user/{caseworker_alice.pk}/change/").content.decode()
    for field in ("is_superuser", "is_staff", "groups", "user_permissions", "act_as_departments", "act_as_roles"):
        assert f'name="{field}"' not in page


def test_superusers_see_privilege_fields_editable_in_admin(client, superuser, caseworker_alice):
    client.force_login(superuser)
    page = client.get(f"/admin/entitlements/user/{caseworker_alice.pk}/change/").content.decode()
    for field in ("is_superuser", "is_staff", "groups", "user_permissions", "act_as_departments"):
        assert f'name="{field}"' in page


def test_only_superusers_grant_a_role_that_holds_a_right(supervisor_sam, caseworker_alice, superuser):
    role = role_save(role_code="deployers", name="Deployers", queue_names=[], permissions=["deploy_workflows"])
    with pytest.raises(PermissionDenied):
        role_assignment_grant(user=caseworker_alice, role=role, granted_by=supervisor_sam)
    role_assignment_grant(user=caseworker_alice, role=role, granted_by=superuser)


def test_only_superusers_change_a_roles_rights_and_the_change_is_audited(supervisor_sam, superuser):
    with pytest.raises(PermissionDenied):
        role_save(
            role_code="floor-supervisor",
            name="Floor supervisor",
            queue_names=["intake"],
            permissions=["supervise", "deploy_workflows"],
            changed_by=supervisor_sam,
        )
    role_save(
        role_code="floor-supervisor",
        name="Floor supervisor",
        queue_names=["intake"],
        permissions=["supervise", "deploy_workflows"],
        changed_by=superuser,
    )
    event = privilege_events("role:floor-supervisor", "rights").get()
    assert (event.details["old"], event.details["new"]) == ([], ["deploy_workflows"])
