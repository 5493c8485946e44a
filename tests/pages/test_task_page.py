"""The task page: a form generated from the task's declared fields, claim, release, complete, comment; 404 outside my queues."""

import pytest
from django.utils import timezone

from entitlements.models import SecurityEvent
from tasks.models import WorkflowTask

pytestmark = pytest.mark.django_db

FORM = [
    {"id": "received_on", "label": "Complaint received on", "type": "date", "required": True},
    {
        "id": "received_via",
        "label": "Received via",
        "type": "enum",
        "required": True,
        "values": [{"id": "EMAIL", "name": "Email"}, {"id": "PHONE", "name": "Phone"}],
    },
    {"id": "witnesses", "label": "Number of witnesses", "type": "long", "required": False},
    {"id": "anonymous", "label": "Anonymous complainant", "type": "boolean", "required": False},
    {"id": "notes", "label": "Intake notes", "type": "text", "required": False},
    {"id": "reference", "label": "Reference", "type": "string", "required": False},
]


@pytest.fixture
def claimed_task(caseworker_alice, make_task):
    from tasks.services import task_claim

    task = make_task("intake", name="Intake review", form_fields=FORM)
    return task_claim(user=caseworker_alice, task_id=task.pk)


def test_form_has_a_labelled_input_of_the_declared_type_for_each_field(page_as, caseworker_alice, claimed_task):
    body = page_as(caseworker_alice).get(f"/tasks/{claimed_task.pk}/").content.decode()
    assert '<label for="field-received_on">Complaint received on <span class="req">required</span></label>' in body
    assert '<input type="date" name="var_received_on" id="field-received_on"' in body
    assert '<select name="var_received_via" id="field-received_via" required' in body
    assert '<option value="PHONE">Phone</option>' in body
    assert '<input type="number" step="1" inputmode="numeric" name="var_witnesses"' in body
    assert '<input type="checkbox" name="var_anonymous" id="field-anonymous"' in body
    assert '<textarea name="var_notes" id="field-notes"' in body
    assert '<input type="text" name="var_reference" id="field-reference"' in body
    assert '<label for="field-witnesses">Number of witnesses</label>' in body


def test_completing_with_bad_input_keeps_what_was_typed_and_says_what_is_wrong_beside_each_field(
    page_as, caseworker_alice, claimed_task
):
    response = page_as(caseworker_alice).post(
        f"/tasks/{claimed_task.pk}/complete/",
        {
            "var_received_on": "",
            "var_received_via": "PHONE",
            "var_witnesses": "three",
            "var_notes": "typed notes",
            "var_anonymous": "true",
            "completion_comment": "my note",
        },
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert '<span class="field-error" id="field-received_on-error">This field is required.</span>' in body
    assert '<span class="field-error" id="field-witnesses-error">Must be a whole number.</span>' in body
    assert 'value="three"' in body and ">typed notes</textarea>" in body and ">my note</textarea>" in body
    assert '<option value="PHONE" selected>' in body
    assert 'id="field-anonymous" value="true" checked' in body
    assert "the task was not completed" in body
    claimed_task.refresh_from_db()
    assert claimed_task.status == "CLAIMED"


def test_completing_with_good_input_leads_to_the_inbox_with_claim_next(page_as, caseworker_alice, claimed_task):
    client = page_as(caseworker_alice)
    response = client.post(
        f"/tasks/{claimed_task.pk}/complete/",
        {
            "var_received_on": "2026-01-02",
            "var_received_via": "EMAIL",
            "var_witnesses": "3",
        },
    )
    assert response.status_code == 302 and response["Location"].startswith("/inbox/")
    claimed_task.refresh_from_db()
    assert claimed_task.status == "COMPLETED"
    assert claimed_task.variables == {
        "received_on": "2026-01-02",
        "received_via": "EMAIL",
        "witnesses": 3,
        "anonymous": False,
    }
    body = client.get(response["Location"]).content.decode()
    assert "Intake review” is complete" in body and "Claim next task</button>" in body


def test_claiming_a_task_someone_else_just_took_shows_a_message_not_an_error(
    page_as, caseworker_alice, legal_reviewer_carol, make_task
):
    task = make_task("triage", name="Contested")
    WorkflowTask.objects.filter(pk=task.pk).update(
        status="CLAIMED", assignee=legal_reviewer_carol, claimed_at=timezone.now()
    )
    response = page_as(caseworker_alice).post(f"/tasks/{task.pk}/claim/", {"next": "/inbox/queues/"}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/inbox/queues/"
    assert f"Task #{task.pk} was just claimed by someone else" in response.content.decode()


def test_claim_ignores_a_next_url_off_this_site(page_as, caseworker_alice, legal_reviewer_carol, make_task):
    task = make_task("triage")
    WorkflowTask.objects.filter(pk=task.pk).update(
        status="CLAIMED", assignee=legal_reviewer_carol, claimed_at=timezone.now()
    )
    response = page_as(caseworker_alice).post(f"/tasks/{task.pk}/claim/", {"next": "https://evil.example/"})
    assert response["Location"] == f"/tasks/{task.pk}/"


def test_claim_from_the_task_page_claims_it(page_as, caseworker_alice, make_task):
    task = make_task("intake", name="Open one")
    response = page_as(caseworker_alice).post(f"/tasks/{task.pk}/claim/")
    assert response["Location"] == f"/tasks/{task.pk}/"
    task.refresh_from_db()
    assert (task.status, task.assignee) == ("CLAIMED", caseworker_alice)


def test_release_gives_the_task_back_to_its_queue(page_as, caseworker_alice, claimed_task):
    response = page_as(caseworker_alice).post(f"/tasks/{claimed_task.pk}/release/", follow=True)
    assert "released" in response.content.decode()
    claimed_task.refresh_from_db()
    assert (claimed_task.status, claimed_task.assignee) == ("OPEN", None)


def test_comment_is_added_to_the_history(page_as, caseworker_alice, claimed_task):
    client = page_as(caseworker_alice)
    client.post(f"/tasks/{claimed_task.pk}/comment/", {"comment": "Called the complainant <b>back</b>"})
    body = client.get(f"/tasks/{claimed_task.pk}/").content.decode()
    assert "Called the complainant &lt;b&gt;back&lt;/b&gt;" in body


def test_an_empty_comment_is_refused_beside_the_field(page_as, caseworker_alice, claimed_task):
    response = page_as(caseworker_alice).post(f"/tasks/{claimed_task.pk}/comment/", {"comment": "  "})
    assert response.status_code == 422
    assert '<span class="field-error" id="comment-error">This field is required.</span>' in response.content.decode()


def test_open_task_shows_claim_but_no_form(page_as, caseworker_alice, make_task):
    task = make_task("intake", name="Unclaimed", form_fields=FORM)
    body = page_as(caseworker_alice).get(f"/tasks/{task.pk}/").content.decode()
    assert "Claim this task</button>" in body and "var_received_on" not in body
    assert '<span class="badge status status-open">Open</span>' in body


def test_an_action_address_opened_or_reloaded_goes_to_the_task_page_and_changes_nothing(
    page_as, caseworker_alice, claimed_task
):
    client = page_as(caseworker_alice)
    for action in ("claim", "release", "complete", "comment"):
        response = client.get(f"/tasks/{claimed_task.pk}/{action}/")
        assert (response.status_code, response["Location"]) == (303, f"/tasks/{claimed_task.pk}/")
    claimed_task.refresh_from_db()
    assert claimed_task.status == "CLAIMED"


def test_a_failed_completion_shown_again_is_reloadable(page_as, caseworker_alice, claimed_task):
    client = page_as(caseworker_alice)
    response = client.post(f"/tasks/{claimed_task.pk}/complete/", {"var_received_on": "not a date"})
    assert response.status_code == 422
    # What a reload of that address (or opening it again) does:
    assert client.get(f"/tasks/{claimed_task.pk}/complete/", follow=True).status_code == 200


def test_a_completion_says_done_once(page_as, caseworker_alice, claimed_task):
    response = page_as(caseworker_alice).post(
        f"/tasks/{claimed_task.pk}/complete/",
        {"var_received_on": "2026-01-02", "var_received_via": "EMAIL", "var_notes": ""},
        follow=True,
    )
    body = response.content.decode()
    assert "is complete." in body and "Done: Done:" not in body and body.count("Done:") == 1


# --- denials ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def fraud_task(make_task):
    return make_task("fraud-investigation", name="Fraud work", form_fields=FORM)


def test_a_task_of_another_queue_is_404_and_the_denial_is_audited(page_as, caseworker_alice, fraud_task):
    before = SecurityEvent.objects.filter(event_type="PERMISSION_DENIED", actor=caseworker_alice).count()
    response = page_as(caseworker_alice).get(f"/tasks/{fraud_task.pk}/")
    assert response.status_code == 404
    assert "Fraud work" not in response.content.decode()
    event = (
        SecurityEvent.objects.filter(event_type="PERMISSION_DENIED", actor=caseworker_alice)
        .order_by("-event_id")
        .first()
    )
    assert SecurityEvent.objects.filter(event_type="PERMISSION_DENIED", actor=caseworker_alice).count() == before + 1
    assert event.path == f"/tasks/{fraud_task.pk}/" and event.details["task_id"] == fraud_task.pk


def test_a_task_that_does_not_exist_is_404_without_an_audit_row(page_as, caseworker_alice):
    client = page_as(caseworker_alice)
    before = SecurityEvent.objects.count()
    assert client.get("/tasks/999999999/").status_code == 404
    assert SecurityEvent.objects.count() == before


@pytest.mark.parametrize("action", ["claim", "release", "complete", "comment"])
def test_actions_on_a_task_of_another_queue_are_404_and_change_nothing(page_as, caseworker_alice, fraud_task, action):
    response = page_as(caseworker_alice).post(
        f"/tasks/{fraud_task.pk}/{action}/",
        {
            "comment": "x",
            "var_received_on": "2026-01-02",
            "var_received_via": "EMAIL",
        },
    )
    assert response.status_code == 404
    fraud_task.refresh_from_db()
    assert (fraud_task.status, fraud_task.assignee) == ("OPEN", None)
    assert not fraud_task.history.filter(event_type="COMMENTED").exists()


def test_completing_a_task_someone_else_holds_is_a_message(page_as, caseworker_alice, legal_reviewer_carol, make_task):
    task = make_task("triage", name="Carol's")
    WorkflowTask.objects.filter(pk=task.pk).update(
        status="CLAIMED", assignee=legal_reviewer_carol, claimed_at=timezone.now()
    )
    response = page_as(caseworker_alice).post(f"/tasks/{task.pk}/complete/", follow=True)
    assert response.status_code == 200
    assert "held by someone else" in response.content.decode()


def test_nul_bytes_in_form_fields_and_comments_are_refused_beside_the_field(page_as, caseworker_alice, claimed_task):
    client = page_as(caseworker_alice)
    response = client.post(
        f"/tasks/{claimed_task.pk}/complete/",
        {
            "var_received_on": "2026-01-02",
            "var_received_via": "EMAIL",
            "var_notes": "bad\x00byte",
        },
    )
    assert response.status_code == 422
    assert '<span class="field-error" id="field-notes-error">Contains a character that cannot be stored.</span>' in (
        response.content.decode()
    )
    response = client.post(f"/tasks/{claimed_task.pk}/comment/", {"comment": "bad\x00byte"})
    assert response.status_code == 422
    claimed_task.refresh_from_db()
    assert claimed_task.status == "CLAIMED"


def test_an_archived_task_page_shows_the_task_and_its_history_read_only(page_as, caseworker_alice, archived_task):
    response = page_as(caseworker_alice).get(f"/tasks/{archived_task.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Old intake review" in body and "archived, read-only" in body
    assert "done long ago" in body  # the completion comment, from the archived history
    assert 'class="comment-form"' not in body and f"/tasks/{archived_task.pk}/claim/" not in body


def test_an_archived_task_outside_my_queues_is_404_and_audited(page_as, fraud_investigator_bob, archived_task):
    response = page_as(fraud_investigator_bob).get(f"/tasks/{archived_task.pk}/")
    assert response.status_code == 404
    denial = SecurityEvent.objects.filter(event_type="PERMISSION_DENIED").latest("event_id")
    assert denial.details.get("task_id") == archived_task.pk and denial.details.get("archived") is True


def test_a_finished_task_says_how_it_met_its_due_date_not_when_it_is_due(page_as, caseworker_alice, claimed_task):
    from datetime import timedelta

    from django.utils import timezone

    from tasks.services import task_complete

    WorkflowTask.objects.filter(pk=claimed_task.pk).update(due_date=timezone.now() + timedelta(days=7))
    task_complete(
        user=caseworker_alice,
        task_id=claimed_task.pk,
        variables={"received_on": "2026-01-02", "received_via": "EMAIL"},
    )
    body = page_as(caseworker_alice).get(f"/tasks/{claimed_task.pk}/").content.decode()
    assert "Done on time" in body and "Due in" not in body

    WorkflowTask.objects.filter(pk=claimed_task.pk).update(due_date=timezone.now() - timedelta(days=2))
    body = page_as(caseworker_alice).get(f"/tasks/{claimed_task.pk}/").content.decode()
    assert "late" in body and "Overdue" not in body
