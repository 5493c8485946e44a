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
