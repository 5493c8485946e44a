"""Factories for test data."""

import factory
from django.utils import timezone

from cases.models import Case
from entitlements.models import Department, User
from queues.models import WorkflowQueue
from tasks.models import WorkflowTask


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ("dept_code",)

    dept_code = factory.Sequence(lambda n: f"dept-{n}")
    dept_name = factory.LazyAttribute(lambda d: d.dept_code.title())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")

    @factory.post_generation
    def persist_password(obj, create, extracted, **kwargs):
        if create:
            obj.save(update_fields=["password"])


class QueueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkflowQueue
        django_get_or_create = ("queue_name",)

    queue_name = factory.Sequence(lambda n: f"queue-{n}")
    display_name = factory.LazyAttribute(lambda q: q.queue_name.title())


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkflowTask

    name = factory.Sequence(lambda n: f"Task {n}")
    queue = factory.SubFactory(QueueFactory)
    created_at = factory.LazyFunction(timezone.now)


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    case_number = factory.Sequence(lambda n: f"CASE-TEST-{n:06d}")
    title = factory.Sequence(lambda n: f"Case {n}")
