"""Admin for departments, users, skills, roles, role assignments, API tokens and the security audit."""

from itertools import groupby

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.utils import timezone
from django.utils.html import format_html_join
from knox.models import AuthToken as KnoxAuthToken
from rest_framework.authtoken.models import TokenProxy

from core.errors import WorkflowError

from .authentication import client_address
from .models import (
    ApiToken,
    AuthFailureTally,
    Department,
    Right,
    SecurityEvent,
    Skill,
    User,
    UserRoleAssignment,
    WorkflowRole,
)
from .selectors import queue_capabilities_for_user
from .services import api_token_revoke, role_assignment_grant, role_assignment_revoke, role_save

# DRF's plaintext tokens are gone (migration 0008), and knox's own model is swapped for ApiToken: neither page
# may show or issue a token.
for _model in (TokenProxy, KnoxAuthToken):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("dept_code", "dept_name", "parent", "created_at")
    list_filter = ("parent",)
    search_fields = ("dept_code", "dept_name")
    list_select_related = ("parent",)


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ("skill_code", "name")
    search_fields = ("skill_code", "name")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = (
        "username",
        "email",
        "first_name",
        "last_name",
        "department",
        "is_staff",
        "is_service_account",
        "is_active",
    )
    list_filter = ("department", "is_staff", "is_superuser", "is_service_account", "is_active", "skills")
    list_select_related = ("department",)
    fieldsets = DjangoUserAdmin.fieldsets + (
        ("Work", {"fields": ("department", "skills", "max_concurrent_tasks", "is_service_account")}),
        (
            "Act-as scope (with the act-on-behalf permission)",
            {"fields": ("act_as_departments", "act_as_roles", "act_as_staff")},
        ),
    )
    filter_horizontal = ("groups", "user_permissions", "skills", "act_as_departments", "act_as_roles")
    readonly_fields = ("effective_queues",)
    search_fields = ("username", "first_name", "last_name", "email")
    # Only superusers change these; for anyone else they show read-only (entitlements/privileges.py enforces it).
    privilege_fields = (
        "is_superuser",
        "is_staff",
        "groups",
        "user_permissions",
        "act_as_departments",
        "act_as_roles",
        "act_as_staff",
    )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return (*fieldsets, ("Effective queues now", {"fields": ("effective_queues",)}))

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return readonly
        return readonly + self.privilege_fields

    @admin.display(description="queues and capabilities now")
    def effective_queues(self, user):
        rows = queue_capabilities_for_user(user=user)
        if not rows:
            return "No queues: the user holds no role in force."
        return format_html_join(
            "\n", "<div><strong>{}</strong>: {}</div>", ((queue, ", ".join(caps)) for queue, caps in rows.items())
        )


@admin.register(WorkflowRole)
class WorkflowRoleAdmin(admin.ModelAdmin):
    list_display = ("role_code", "name", "queue_list", "department", "permissions")
    list_filter = ("department",)
    search_fields = ("role_code", "name", "queue_names")
    list_select_related = ("department",)
    readonly_fields = ("group",)

    @admin.display(description="queues")
    def queue_list(self, role):
        return ", ".join(role.queue_names)

    def save_model(self, request, obj, form, change):
        # Through the service, so the role's group gets exactly its queue permissions.
        try:
            saved = role_save(
                role_code=obj.role_code,
                name=obj.name,
                queue_names=obj.queue_names,
                permissions=obj.permissions,
                department=obj.department,
                description=obj.description,
                changed_by=request.user,
            )
        except WorkflowError as exc:
            messages.error(request, exc.detail)
            return
        obj.pk = saved.pk
        obj.group = saved.group


class RoleGrantForm(forms.ModelForm):
    """Grant a role to a user for a window of time, in one form."""

    class Meta:
        model = UserRoleAssignment
        fields = ("user", "role", "valid_from", "valid_until", "is_temporary_escalation", "reason")

    def clean(self):
        data = super().clean()
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end <= start:
            self.add_error("valid_until", "Must be after valid from.")
        if data.get("is_temporary_escalation"):
            if not end:
                self.add_error("valid_until", "A temporary escalation must end.")
            if not (data.get("reason") or "").strip():
                self.add_error("reason", "A temporary escalation needs a reason.")
        return data


@admin.register(UserRoleAssignment)
class UserRoleAssignmentAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "role",
        "valid_from",
        "valid_until",
        "is_temporary_escalation",
        "in_force",
        "granted_by",
        "revoked_at",
    )
    list_filter = ("role", "is_temporary_escalation", "valid_until")
    search_fields = ("user__username", "role__role_code", "reason")
    list_select_related = ("user", "role", "granted_by")
    autocomplete_fields = ("user",)
    date_hierarchy = "valid_from"
    form = RoleGrantForm
    actions = ["revoke_now"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Roles holding rights (deploy, start) are privileges: only superusers grant them.
        if db_field.name == "role" and not request.user.is_superuser:
            kwargs["queryset"] = WorkflowRole.objects.exclude(permissions__has_any_keys=list(Right.values))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(boolean=True, description="in force now")
    def in_force(self, assignment):
        from django.utils import timezone

        return assignment.is_active_at(timezone.now())

    def get_readonly_fields(self, request, obj=None):
        # Grants are history: to change one, revoke it and grant anew.
        if obj is not None:
            return (
                "user",
                "role",
                "valid_from",
                "valid_until",
                "is_temporary_escalation",
                "reason",
                "granted_by",
                "revoked_at",
                "revoked_by",
                "created_at",
            )
        return ()

    def save_model(self, request, obj, form, change):
        if change:
            return
        saved = role_assignment_grant(
            user=obj.user,
            role=obj.role,
            granted_by=request.user,
            valid_from=obj.valid_from,
            valid_until=obj.valid_until,
            temporary_escalation=obj.is_temporary_escalation,
            reason=obj.reason,
            remote_addr=client_address(request),
        )
        obj.pk = saved.pk

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected assignments now")
    def revoke_now(self, request, queryset):
        for assignment in queryset:
            role_assignment_revoke(
                assignment_id=assignment.pk, revoked_by=request.user, remote_addr=client_address(request)
            )
        self.message_user(request, f"Revoked {queryset.count()} assignment(s).")


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event_type", "actor_username", "on_behalf_of_username", "remote_addr", "path")
    list_filter = ("event_type",)
    search_fields = ("actor_username", "on_behalf_of_username", "path")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Lists and revokes API tokens; never shows a key (only its digest is stored). Tokens are issued with
    `manage.py create_api_token`, which prints the key once."""

    list_display = ("name", "user", "read_only", "created", "expiry", "in_force", "last_used_at", "created_by")
    list_filter = ("read_only", "expiry")
    search_fields = ("user__username", "name")
    list_select_related = ("user", "created_by")
    fields = ("name", "user", "read_only", "created", "expiry", "last_used_at", "created_by")
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(boolean=True, description="in force now")
    def in_force(self, token):
        return token.expiry is None or token.expiry > timezone.now()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoking goes through the service, which audits it

    def has_revoke_permission(self, request):
        return request.user.has_perm("entitlements.delete_apitoken")

    @admin.action(description="Revoke the selected tokens", permissions=["revoke"])
    def revoke(self, request, queryset):
        revoked = 0
        for user, tokens in groupby(queryset.select_related("user").order_by("user_id"), key=lambda t: t.user):
            revoked += api_token_revoke(user=user, revoked_by=request.user, digests=[t.digest for t in tokens])
        self.message_user(request, f"Revoked {revoked} token(s).")


@admin.register(AuthFailureTally)
class AuthFailureTallyAdmin(admin.ModelAdmin):
    """Failed authentications per address and window; the audit holds the first of each."""

    list_display = ("window_start", "remote_addr", "failures", "throttled", "last_username", "last_path", "last_at")
    search_fields = ("remote_addr", "last_username")
    date_hierarchy = "window_start"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    """A group's permissions are privileges: only superusers change them (entitlements/privileges.py enforces it)."""

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        return readonly if request.user.is_superuser else (*readonly, "permissions")
