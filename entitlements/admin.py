"""Admin for departments, users, skills, roles, role assignments, API tokens and the security audit; and the
access audit's part of the console's case and task pages (DetailReadsAdminMixin)."""

from itertools import groupby

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from knox.models import AuthToken as KnoxAuthToken
from rest_framework.authtoken.models import TokenProxy

from core.errors import NotFound, WorkflowError

from .authentication import client_address, denial_record
from .detail_reads import detail_read_record, detail_read_refusal_record
from .models import (
    ApiToken,
    AuthFailureTally,
    Department,
    DetailReadChannel,
    Right,
    SecurityEvent,
    Skill,
    User,
    UserRoleAssignment,
    WorkflowRole,
)
from .row_scope import exists_in_any_scope
from .selectors import detail_reads_of, queue_capabilities_for_user
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


# --- the access audit on the console's case and task pages ------------------------------------------------------

DETAIL_READS_FIELD = "who_looked_at_this"
# The newest reads shown on the object's own page; the rest are on its reads page.
DETAIL_READS_SHOWN = 20
DETAIL_READS_PAGE_SIZE = 50
# The reads page pages through at most this many of the newest reads (and counts no further).
DETAIL_READS_CAP = 2_000
DETAIL_READS_TEMPLATE = "admin/detail_reads.html"


class DetailReadsAdminMixin:
    """The console's page of a case or task: showing it is a detail read, written to the access audit (a refused
    one too), and it shows who looked at the object, newest first, with a page of all its reads.

    Whoever may open the object's page sees its audit: the ModelAdmin's rows are the console's scope (the
    supervisors of the object's queues; superusers). A caseworker reaches neither. The audit table has no
    ModelAdmin of its own: Django's admin refuses a model with a composite primary key, and there would be
    nothing to add, change or delete.
    """

    detail_read_object = ""  # a DetailReadObject value

    def detail_read_label(self, obj):
        """The case number or business key stored with the read (an expression the INSERT evaluates, or text)."""
        return ""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        shown = (getattr(response, "context_data", None) or {}).get("original")
        if shown is not None:
            self.detail_read_write(request, shown)
        else:
            self.detail_read_refusal_write(request, object_id)
        return response

    def detail_read_write(self, request, obj) -> None:
        detail_read_record(
            request=request,
            channel=DetailReadChannel.ADMIN,
            object_type=self.detail_read_object,
            object_id=obj.pk,
            object_label=self.detail_read_label(obj),
        )

    def detail_read_refusal_write(self, request, object_id) -> None:
        """The page was refused (admin redirects): audited when the object exists outside the user's rows."""
        try:
            pk = self.opts.pk.to_python(unquote(object_id))
        except ValidationError:
            return
        if pk is None or not exists_in_any_scope(self.model._default_manager.filter(pk=pk)):
            return
        error = NotFound(f"{self.detail_read_object} {pk} not found")
        error.denial = {f"{self.detail_read_object}_id": pk}
        denial_record(request=request, error=error, surface="admin")
        detail_read_refusal_record(
            request=request,
            channel=DetailReadChannel.ADMIN,
            object_type=self.detail_read_object,
            object_id=pk,
            error=error,
        )

    # -- who looked at this: a section of the page, and a page of its own --

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        return readonly if obj is None else (*readonly, DETAIL_READS_FIELD)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        fieldsets = [
            (name, {**options, "fields": [f for f in options["fields"] if f != DETAIL_READS_FIELD]})
            for name, options in fieldsets
        ]
        return [*fieldsets, ("Who looked at this", {"fields": [DETAIL_READS_FIELD]})]

    @admin.display(description="Newest reads")
    def who_looked_at_this(self, obj):
        reads = list(detail_reads_of(object_type=self.detail_read_object, object_id=obj.pk)[: DETAIL_READS_SHOWN + 1])
        link = format_html('<a href="{}">All reads of this {}</a>', self.detail_reads_url(obj), self.detail_read_object)
        if not reads:
            return format_html("Nobody yet. {}", link)
        more = format_html(" ({} newest shown)", DETAIL_READS_SHOWN) if len(reads) > DETAIL_READS_SHOWN else ""
        return format_html(
            '<table class="detail-reads"><thead><tr><th>When</th><th>Who</th><th>Through</th><th>Where</th>'
            "<th>Outcome</th><th>From</th></tr></thead><tbody>{}</tbody></table><p>{}{}</p>",
            format_html_join("", "<tr>{}</tr>", ((detail_read_cells(entry),) for entry in reads[:DETAIL_READS_SHOWN])),
            link,
            more,
        )

    def detail_reads_url(self, obj) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_reads", args=[obj.pk])

    def get_urls(self):
        reads = path(
            "<path:object_id>/reads/",
            self.admin_site.admin_view(self.detail_reads_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_reads",
        )
        # Before the defaults: their "<path:object_id>/" would swallow ".../reads/".
        return [reads, *super().get_urls()]

    def detail_reads_view(self, request, object_id):
        """Every read of the object, newest first, DETAIL_READS_PAGE_SIZE a page (the newest DETAIL_READS_CAP)."""
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404(f"{self.detail_read_object} {object_id} not found")
        reads = detail_reads_of(object_type=self.detail_read_object, object_id=obj.pk)[:DETAIL_READS_CAP]
        paginator = Paginator(reads, DETAIL_READS_PAGE_SIZE)
        page = paginator.get_page(request.GET.get("page"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Who looked at {self.detail_read_object} {obj}",
            "opts": self.opts,
            "original": obj,
            "page": page,
            "rows": [detail_read_cells(entry) for entry in page.object_list],
            "capped": paginator.count >= DETAIL_READS_CAP,
            "cap": DETAIL_READS_CAP,
        }
        return TemplateResponse(request, DETAIL_READS_TEMPLATE, context)


def detail_read_cells(entry) -> str:
    """One read as table cells: when, who, through which account, where, outcome, from which address."""
    reader = entry.reader.get_username() if entry.reader else (f"user #{entry.reader_id}" if entry.reader_id else "")
    via = entry.via_account.get_username() if entry.via_account else ""
    return format_html(
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        f"{timezone.localtime(entry.read_at):%Y-%m-%d %H:%M:%S}",
        reader or "—",
        f"on behalf, via {via}" if via else "own login",
        f"{entry.get_channel_display()} · {entry.method} {entry.path}",
        entry.get_outcome_display(),
        entry.remote_addr or "",
    )
