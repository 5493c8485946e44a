"""Admin for departments, users, skills, roles, role assignments and the security audit."""
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from .models import Department, SecurityEvent, Skill, User, UserRoleAssignment, WorkflowRole


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
    list_display = ("username", "email", "first_name", "last_name", "department", "is_staff", "is_service_account", "is_active")
    list_filter = ("department", "is_staff", "is_superuser", "is_service_account", "is_active", "skills")
    list_select_related = ("department",)
    fieldsets = DjangoUserAdmin.fieldsets + (
        ("Work", {"fields": ("department", "skills", "max_concurrent_tasks", "is_service_account")}),
    )
    filter_horizontal = ("groups", "user_permissions", "skills")


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


@admin.register(UserRoleAssignment)
class UserRoleAssignmentAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "valid_from", "valid_until", "is_temporary_escalation", "granted_by", "revoked_at")
    list_filter = ("role", "is_temporary_escalation", "valid_until")
    search_fields = ("user__username", "role__role_code", "reason")
    list_select_related = ("user", "role", "granted_by")
    autocomplete_fields = ("user",)
    date_hierarchy = "valid_from"


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
