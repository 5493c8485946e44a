"""/engine-rest/ routes (Camunda 7's paths)."""

from django.urls import path

from . import views

urlpatterns = [
    path("external-task/fetchAndLock", views.FetchAndLock.as_view(), name="engine-rest-fetch-and-lock"),
    path("external-task/<str:pk>/complete", views.ExternalTaskComplete.as_view()),
    path("external-task/<str:pk>/failure", views.ExternalTaskFailure.as_view()),
    path("external-task/<str:pk>/bpmnError", views.ExternalTaskBpmnError.as_view()),
    path("external-task/<str:pk>/extendLock", views.ExternalTaskExtendLock.as_view()),
    path("external-task/<str:pk>/unlock", views.ExternalTaskUnlock.as_view()),
    path("message", views.MessageCorrelation.as_view()),
    path("process-definition/key/<str:key>/start", views.StartByKey.as_view()),
    path("process-instance/<str:pk>", views.ProcessInstanceDetail.as_view()),
    path("process-instance/<str:pk>/variables", views.ProcessInstanceVariables.as_view()),
    path("process-instance/<str:pk>/variables/<str:name>", views.ProcessInstanceVariable.as_view()),
    path("task", views.TaskList.as_view()),
    path("task/<str:pk>/claim", views.TaskClaim.as_view()),
    path("task/<str:pk>/complete", views.TaskComplete.as_view()),
]
