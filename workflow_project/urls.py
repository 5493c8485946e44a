"""URL configuration."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from cases.api import CaseViewSet
from tasks.api import DefinitionViewSet, ProcessViewSet, QueueViewSet, TaskViewSet

from . import health


class Router(SimpleRouter):
    """Routes that answer with or without a trailing slash (the contract writes /claim/next without one)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = Router()
router.register("workflow/tasks", TaskViewSet, basename="task")
router.register("workflow/definitions", DefinitionViewSet, basename="definition")
router.register("workflow/processes", ProcessViewSet, basename="process")
router.register("queues", QueueViewSet, basename="queue")
router.register("cases", CaseViewSet, basename="case")

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include(router.urls)),
]
