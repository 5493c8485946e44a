"""Business calendars in the database: which calendar a queue counts SLA hours in, their validation and admin."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.urls import reverse

from core.errors import InvalidInput
from queues.calendar import add_business_hours
from queues.models import BusinessCalendar, BusinessHoliday, DepartmentCalendar, WorkflowQueue
from queues.selectors import business_calendar_for, queue_business_calendar
from queues.services import business_calendar_save

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")
BERLIN = ZoneInfo("Europe/Berlin")
FRIDAY_1600_LONDON = datetime(2026, 1, 9, 16, 0, tzinfo=LONDON)


@pytest.fixture(autouse=True)
def no_calendars_yet(demo_org):
    """Start from queues and departments without calendars, whatever seed_demo gives the demo organisation."""
    DepartmentCalendar.objects.all().delete()
    WorkflowQueue.objects.update(business_calendar=None)


@pytest.fixture
def london_office(demo_org):
    return business_calendar_save(
        name="Test London office", time_zone="Europe/London", holidays={"2026-01-12": "Office move"}
    )


@pytest.fixture
def berlin_office(demo_org):
    return business_calendar_save(name="Test Berlin office", time_zone="Europe/Berlin")


def queue(name) -> WorkflowQueue:
    return WorkflowQueue.objects.get(queue_name=name)


def use_calendar(queue_name, calendar):
    WorkflowQueue.objects.filter(queue_name=queue_name).update(business_calendar=calendar)


# --- which calendar a queue counts in ---------------------------------------------------------------------------


def test_a_queue_counts_sla_hours_in_its_own_calendar(london_office):
    use_calendar("intake", london_office)
    assert queue_business_calendar(queue=queue("intake")) == london_office


def test_a_queue_without_a_calendar_counts_in_its_departments(london_office):
    business_calendar_save(name="Test London office", time_zone="Europe/London", departments=["legal"])
    assert queue_business_calendar(queue=queue("legal-review")) == london_office


def test_a_queue_falls_back_to_the_nearest_ancestor_departments_calendar(london_office, berlin_office):
    # fraud-investigation belongs to Fraud, a child of Investigations.
    business_calendar_save(name="Test Berlin office", time_zone="Europe/Berlin", departments=["investigations"])
    assert queue_business_calendar(queue=queue("fraud-investigation")) == berlin_office
    business_calendar_save(name="Test London office", time_zone="Europe/London", departments=["fraud"])
    assert queue_business_calendar(queue=queue("fraud-investigation")) == london_office


def test_a_queues_own_calendar_wins_over_its_departments(london_office, berlin_office):
    business_calendar_save(name="Test Berlin office", time_zone="Europe/Berlin", departments=["investigations"])
    use_calendar("intake", london_office)
    assert queue_business_calendar(queue=queue("intake")) == london_office


def test_a_queue_with_no_calendar_anywhere_counts_round_the_clock(demo_org):
    assert business_calendar_for(queue=queue("intake")) is None


def test_the_arithmetic_calendar_carries_zone_hours_and_holidays(london_office):
    use_calendar("intake", london_office)
    calendar = business_calendar_for(queue=queue("intake"))
    assert calendar.time_zone == LONDON
    assert calendar.holidays == (date(2026, 1, 12),)
    # Fri 16-17, Mon is the office move, Tue 8h, Wed 09-16.
    assert add_business_hours(FRIDAY_1600_LONDON, 16, calendar) == datetime(2026, 1, 14, 16, tzinfo=LONDON)


def test_finding_a_queues_calendar_through_two_departments_takes_four_queries(
    berlin_office, django_assert_max_num_queries
):
    business_calendar_save(name="Test Berlin office", time_zone="Europe/Berlin", departments=["investigations"])
    fraud = queue("fraud-investigation")
    # Four to find it, and one to learn that this transaction is the one that edited calendars (queues/calendar_cache.py:
    # its reads are never cached), since the test's edit and read share the test's transaction.
    with django_assert_max_num_queries(5):
        assert business_calendar_for(queue=fraud).time_zone == BERLIN


# --- validation and integrity -----------------------------------------------------------------------------------


def test_a_new_calendar_starts_as_monday_to_friday_nine_to_five():
    calendar = BusinessCalendar(name="Default", time_zone="Europe/London")
    calendar.full_clean()
    assert calendar.working_week == "Mon–Fri 09:00–17:00"


def test_a_calendar_without_working_hours_is_refused_with_a_field_message():
    calendar = BusinessCalendar(name="Never", time_zone="Europe/London", working_hours={})
    with pytest.raises(ValidationError) as refused:
        calendar.full_clean()
    assert "no working hours" in refused.value.message_dict["working_hours"][0]


def test_a_calendar_in_a_made_up_time_zone_is_refused_with_a_field_message():
    calendar = BusinessCalendar(name="Mars", time_zone="Mars/Olympus")
    with pytest.raises(ValidationError) as refused:
        calendar.full_clean()
    assert "IANA" in refused.value.message_dict["time_zone"][0]


def test_saving_an_invalid_calendar_raises_invalid_input_naming_the_field(demo_org):
    with pytest.raises(InvalidInput) as refused:
        business_calendar_save(name="Bad", time_zone="Europe/London", working_hours={"mon": [["17:00", "09:00"]]})
    assert "working_hours" in refused.value.fields
    assert not BusinessCalendar.objects.filter(name="Bad").exists()


def test_saving_a_calendar_again_replaces_its_holidays_and_departments(london_office):
    business_calendar_save(name="Test London office", time_zone="Europe/London", departments=["legal"])
    business_calendar_save(
        name="Test London office",
        time_zone="Europe/London",
        holidays={date(2026, 12, 25): "Christmas Day"},
        departments=["misconduct"],
    )
    assert list(london_office.holidays.values_list("date", flat=True)) == [date(2026, 12, 25)]
    assert [link.department.dept_code for link in london_office.department_links.all()] == ["misconduct"]


def test_saving_a_calendar_for_an_unknown_department_is_refused(london_office):
    with pytest.raises(InvalidInput) as refused:
        business_calendar_save(name="Test London office", time_zone="Europe/London", departments=["nowhere"])
    assert "departments" in refused.value.fields


def test_a_calendar_holds_one_holiday_per_date(london_office):
    with pytest.raises(IntegrityError), transaction.atomic():
        BusinessHoliday.objects.create(calendar=london_office, date=date(2026, 1, 12), name="Again")


def test_a_calendar_that_a_queue_uses_cannot_be_deleted(london_office):
    use_calendar("intake", london_office)
    with pytest.raises(ProtectedError):
        london_office.delete()


# --- admin ------------------------------------------------------------------------------------------------------


@pytest.fixture
def supervisor_client(client, supervisor_sam):
    client.force_login(supervisor_sam)
    return client


def calendar_form(**fields):
    data = {
        "name": "Paris office",
        "time_zone": "Europe/Paris",
        "working_hours": '{"mon": [["09:00", "17:00"]]}',
        "holidays-TOTAL_FORMS": "0",
        "holidays-INITIAL_FORMS": "0",
        "department_links-TOTAL_FORMS": "0",
        "department_links-INITIAL_FORMS": "0",
    }
    data.update(fields)
    return data


def test_supervisor_adds_a_calendar_with_a_holiday_and_a_department_in_admin(supervisor_client):
    from entitlements.models import Department

    legal = Department.objects.get(dept_code="legal")
    response = supervisor_client.post(
        reverse("admin:queues_businesscalendar_add"),
        calendar_form(
            **{
                "holidays-TOTAL_FORMS": "1",
                "holidays-0-date": "2026-07-14",
                "holidays-0-name": "Fête nationale",
                "department_links-TOTAL_FORMS": "1",
                "department_links-0-department": str(legal.pk),
            }
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    calendar = BusinessCalendar.objects.get(name="Paris office")
    assert [h.name for h in calendar.holidays.all()] == ["Fête nationale"]
    assert queue_business_calendar(queue=queue("legal-review")) == calendar


def test_admin_shows_why_working_hours_are_refused(supervisor_client):
    response = supervisor_client.post(reverse("admin:queues_businesscalendar_add"), calendar_form(working_hours="{}"))
    assert response.status_code == 200
    assert "the week has no working hours" in response.content.decode()
    assert not BusinessCalendar.objects.filter(name="Paris office").exists()


def test_admin_offers_only_iana_time_zones(supervisor_client):
    response = supervisor_client.post(reverse("admin:queues_businesscalendar_add"), calendar_form(time_zone="CET+1"))
    assert response.status_code == 200
    assert not BusinessCalendar.objects.filter(name="Paris office").exists()
    assert "America/New_York" in supervisor_client.get(reverse("admin:queues_businesscalendar_add")).content.decode()


def test_calendar_list_reads_the_working_week_and_who_uses_it(supervisor_client, london_office):
    use_calendar("intake", london_office)
    body = supervisor_client.get(reverse("admin:queues_businesscalendar_changelist")).content.decode()
    assert "Mon–Fri 09:00–17:00" in body
    assert "intake" in body


def test_queue_page_says_which_calendar_its_sla_hours_count_in(supervisor_client, london_office):
    business_calendar_save(name="Test London office", time_zone="Europe/London", departments=["legal"])
    body = supervisor_client.get(
        reverse("admin:queues_workflowqueue_change", args=[queue("legal-review").pk])
    ).content.decode()
    assert "Test London office (Europe/London: Mon–Fri 09:00–17:00)" in body


# --- due dates of new tasks -------------------------------------------------------------------------------------


def test_a_task_created_friday_1600_in_a_london_9_to_5_queue_with_a_24_hour_sla_falls_due_wednesday_1600(
    demo_org, monkeypatch, make_task
):
    calendar = business_calendar_save(name="London 9-5", time_zone="Europe/London")
    use_calendar("intake", calendar)  # intake's SLA is 24 hours
    monkeypatch.setattr("django.utils.timezone.now", lambda: FRIDAY_1600_LONDON.astimezone(UTC))
    task = make_task("intake")
    assert task.due_date == datetime(2026, 1, 14, 16, tzinfo=LONDON)


def test_a_task_in_a_queue_without_a_calendar_falls_due_its_sla_hours_later_round_the_clock(
    demo_org, monkeypatch, make_task
):
    monkeypatch.setattr("django.utils.timezone.now", lambda: FRIDAY_1600_LONDON.astimezone(UTC))
    task = make_task("intake")
    assert task.due_date == datetime(2026, 1, 10, 16, tzinfo=LONDON)
