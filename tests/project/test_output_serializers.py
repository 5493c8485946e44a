"""Output serializers build their fields once per class and still render each object as its own."""
import pytest

from tasks.api import TaskHistorySerializer, TaskSerializer

pytestmark = pytest.mark.django_db


def test_task_serializers_share_one_set_of_fields():
    assert TaskSerializer().fields is TaskSerializer().fields
    assert TaskHistorySerializer().fields is not TaskSerializer().fields


def test_output_serializer_takes_no_input():
    with pytest.raises(TypeError):
        TaskSerializer(data={"name": "x"})


def test_shared_fields_render_each_task_as_its_own(caseworker_alice, make_task):
    first = make_task("intake", priority=10, name="first")
    second = make_task("triage", priority=90, name="second")
    rendered = TaskSerializer([first, second], many=True).data
    assert [(t["id"], t["name"], t["queue"], t["priority"]) for t in rendered] == [
        (first.pk, "first", "intake", 10), (second.pk, "second", "triage", 90),
    ]


def drf_representation(serializer_class, instance):
    """What DRF's own ModelSerializer.to_representation renders for the same fields."""
    from rest_framework import serializers

    serializer = serializer_class(instance)
    return serializers.ModelSerializer.to_representation(serializer, instance)


def test_plain_columns_render_exactly_as_drf_renders_them(caseworker_alice, supervisor_sam, make_task):
    from django.utils import timezone

    from tasks.services import task_claim

    bare = make_task("intake", name="bare")
    full = make_task(
        "triage", name="full", priority=77, description="with everything",
        variables={"amount": 12.5, "nested": {"list": [1, None, "x"]}, "text": "é ✓"},
        due_date=timezone.now() + timezone.timedelta(days=2),
    )
    full = task_claim(user=caseworker_alice, task_id=full.pk)  # alice holds no skills: the task needs none
    for task in (bare, full):
        fresh = type(task).objects.get(pk=task.pk)
        assert TaskSerializer(fresh).data == drf_representation(TaskSerializer, fresh)
    events = list(full.history.all())
    assert [TaskHistorySerializer(e).data for e in events] == [drf_representation(TaskHistorySerializer, e) for e in events]
    assert TaskSerializer(full).data["assignee"] == "alice"
    assert TaskSerializer(full).data["claimed_at"].endswith("Z")


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/St_Johns", "Asia/Kolkata"])
def test_datetimes_render_in_the_current_time_zone_as_drf_renders_them(zone, make_task):
    from django.utils import timezone

    task = make_task("intake", name="zoned", due_date=timezone.now() + timezone.timedelta(days=200))
    task = type(task).objects.get(pk=task.pk)
    with timezone.override(zone):
        rendered = TaskSerializer(task).data
        assert rendered == drf_representation(TaskSerializer, task)
    assert not rendered["created_at"].endswith("Z") and rendered["created_at"] != TaskSerializer(task).data["created_at"]
    assert {field.field_name for field, _, iso_datetime in TaskSerializer._read_plan if iso_datetime} >= {
        "created_at", "claimed_at", "completed_at", "updated_at", "due_date",
    }


def test_plain_columns_are_read_straight_from_the_instance(make_task):
    TaskSerializer(make_task("intake")).data
    plain = {field.field_name for field, column, _ in TaskSerializer._read_plan if column}
    assert {"id", "name", "queue", "priority", "created_at", "variables", "process_instance"} <= plain
    assert not {"assignee", "owner", "overdue"} & plain  # relations and computed fields keep DRF's lookup


def test_the_current_time_zone_is_looked_up_once_per_object(monkeypatch, caseworker_alice, make_task):
    from django.utils import timezone

    from tasks.services import task_claim

    task = task_claim(user=caseworker_alice, task_id=make_task("intake", due_date=timezone.now()).pk)
    lookups = []
    original = timezone.get_current_timezone

    def counted():
        lookups.append(1)
        return original()

    monkeypatch.setattr(timezone, "get_current_timezone", counted)
    TaskSerializer(task).data  # due, created, claimed and updated: four datetimes
    assert len(lookups) == 1


def test_a_datetime_out_of_range_in_the_current_zone_fails_as_drf_fails(make_task):
    import datetime

    from django.utils import timezone
    from rest_framework.exceptions import ValidationError

    task = make_task("intake", due_date=datetime.datetime(9999, 12, 31, 23, tzinfo=datetime.timezone.utc))
    with timezone.override("Pacific/Kiritimati"):  # UTC+14: past year 9999
        with pytest.raises(ValidationError) as ours:
            TaskSerializer(task).data
        with pytest.raises(ValidationError) as drfs:
            drf_representation(TaskSerializer, task)
    assert ours.value.detail == drfs.value.detail
