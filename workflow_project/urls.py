"""URL configuration."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from cases import views as case_pages
from cases.api import CaseViewSet
from core import health
from tasks import views as task_pages
from tasks.api import (
    DefinitionViewSet,
    MessageViewSet,
    NotificationViewSet,
    ProcessViewSet,
    QueueViewSet,
    SignalViewSet,
    TaskViewSet,
)
from tasks.api_decisions import DecisionViewSet
from tasks.console import metrics, summaries
from tasks.console.pages import (
    database_health_page,
    process_mining_index_page,
    process_mining_page,
    staffing_whatif_index_page,
    staffing_whatif_page,
)
from tasks.external import api as external_api

# The supervisor console is Django's admin site, named for what it is. Without the app list beside every page (the
# breadcrumbs and the index lead everywhere) a changelist keeps all its columns in view at common widths.
admin.site.site_header = "Supervisor console"
admin.site.site_title = "Supervisor console"
admin.site.index_title = "Dashboard and administration"
admin.site.enable_nav_sidebar = False


class Router(SimpleRouter):
    """Routes that answer with or without a trailing slash (the contract writes /claim/next without one)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = Router()
router.register("workflow/tasks", TaskViewSet, basename="task")
router.register("workflow/definitions", DefinitionViewSet, basename="definition")
router.register("workflow/decisions", DecisionViewSet, basename="decision")
router.register("workflow/processes", ProcessViewSet, basename="process")
router.register("workflow/messages", MessageViewSet, basename="message")
router.register("workflow/signals", SignalViewSet, basename="signal")
router.register("queues", QueueViewSet, basename="queue")
router.register("cases", CaseViewSet, basename="case")
router.register("notifications", NotificationViewSet, basename="notification")

# The API first: Django tries the patterns in order on every request, and the API takes the most requests
# (otherwise claim-next would be matched only after every page's pattern had failed).
external_tasks = [
    path("fetch-and-lock", external_api.FetchAndLockView.as_view(), name="external-task-fetch-and-lock"),
    path("<int:pk>/complete", external_api.CompleteView.as_view(), name="external-task-complete"),
    path("<int:pk>/failure", external_api.FailureView.as_view(), name="external-task-failure"),
    path("<int:pk>/bpmn-error", external_api.BpmnErrorView.as_view(), name="external-task-bpmn-error"),
    path("<int:pk>/extend-lock", external_api.ExtendLockView.as_view(), name="external-task-extend-lock"),
]

urlpatterns = [
    path("api/workflow/external-tasks/", include(external_tasks)),
    path("engine-rest/", include("tasks.engine_rest.urls")),
    path("api/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/database-health/", admin.site.admin_view(database_health_page), name="database-health"),
    path("admin/process-mining/", admin.site.admin_view(process_mining_index_page), name="process-mining"),
    path(
        "admin/process-mining/<int:workflow_id>/",
        admin.site.admin_view(process_mining_page),
        name="process-mining-definition",
    ),
    path("admin/staffing-whatif/", admin.site.admin_view(staffing_whatif_index_page), name="staffing-whatif"),
    path(
        "admin/staffing-whatif/<str:queue_name>/",
        admin.site.admin_view(staffing_whatif_page),
        name="staffing-whatif-queue",
    ),
    path("admin/summaries/preview/", admin.site.admin_view(summaries.summary_preview), name="summary-preview"),
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(url="/inbox/", permanent=False), name="home"),
    path("inbox/", task_pages.inbox, name="inbox"),
    path("inbox/queues/", task_pages.queue_tasks, name="queue-tasks"),
    path("tasks/<int:task_id>/", task_pages.task_page, name="task-page"),
    path("tasks/<int:task_id>/claim/", task_pages.task_claim, name="task-page-claim"),
    path("tasks/<int:task_id>/release/", task_pages.task_release, name="task-page-release"),
    path("tasks/<int:task_id>/complete/", task_pages.task_complete, name="task-page-complete"),
    path("tasks/<int:task_id>/comment/", task_pages.task_comment, name="task-page-comment"),
    path("notifications/", task_pages.notification_list, name="notification-list"),
    path("notifications/read-all/", task_pages.notifications_read_all, name="notifications-read-all"),
    path("notifications/<int:notification_id>/open/", task_pages.notification_open, name="notification-open"),
    path("cases/", case_pages.case_list, name="case-list"),
    path("cases/<int:case_id>/", case_pages.case_page, name="case-page"),
]

handler404 = "core.api.not_found"
handler500 = "core.api.server_error"
