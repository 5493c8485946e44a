"""The demo organisation: departments, skills, queues, roles and users. Applied by `manage.py seed_demo`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

DEPARTMENTS = [
    # (code, name, parent code)
    ("investigations", "Investigations", None),
    ("fraud", "Fraud", "investigations"),
    ("misconduct", "Misconduct", "investigations"),
    ("legal", "Legal", None),
]

SKILLS = [("fraud", "Fraud investigation"), ("legal", "Legal review")]

QUEUES = [
    dict(
        queue_name="intake",
        display_name="Intake",
        queue_type="STANDARD",
        department="investigations",
        sla_default_hours=24,
        max_capacity=200,
        routing_strategy="ROUND_ROBIN",
        overflow="triage",
        # Overdue intake goes up the list at once.
        escalation_rules=[
            {"level": 1, "trigger": {"type": "overdue"}, "actions": {"raise_priority": 20, "notify": True}},
        ],
    ),
    dict(
        queue_name="triage",
        display_name="Triage",
        queue_type="STANDARD",
        department="investigations",
        sla_default_hours=48,
        max_capacity=200,
        routing_strategy="LEAST_LOADED",
        # Four hours before the due date it rises; a day past it, the escalations team takes it.
        escalation_rules=[
            {"level": 1, "trigger": {"type": "before_due", "hours": 4}, "actions": {"raise_priority": 10}},
            {
                "level": 2,
                "trigger": {"type": "overdue_by", "hours": 24},
                "actions": {"move_to_queue": "escalations", "raise_priority": 20, "notify": True},
            },
        ],
    ),
    dict(
        queue_name="fraud-investigation",
        display_name="Fraud investigation",
        queue_type="SPECIALIZED",
        department="fraud",
        sla_default_hours=240,
        max_capacity=100,
        routing_strategy="SKILL_BASED",
        required_skills=["fraud"],
        # An investigation two days overdue goes to the floor supervisor.
        escalation_rules=[
            {"level": 1, "trigger": {"type": "overdue"}, "actions": {"notify": True}},
            {"level": 2, "trigger": {"type": "overdue_by", "hours": 48}, "actions": {"reassign_to_supervisor": True}},
        ],
    ),
    dict(
        queue_name="legal-review",
        display_name="Legal review",
        queue_type="SPECIALIZED",
        department="legal",
        sla_default_hours=120,
        max_capacity=50,
        routing_strategy="LEAST_LOADED",
    ),
    dict(
        queue_name="escalations",
        display_name="Escalations",
        queue_type="PRIORITY",
        department="investigations",
        sla_default_hours=8,
        max_capacity=50,
        routing_strategy="PRIORITY_WEIGHTED",
        priority_weight=3,
    ),
]

ALL_QUEUES = [q["queue_name"] for q in QUEUES]

# SLA hours count in office hours: Mon–Fri 09:00–17:00 London, without public holidays.
DEMO_CALENDAR = dict(
    name="London office",
    time_zone="Europe/London",
    working_hours={day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    holidays={"2026-12-25": "Christmas Day", "2026-12-28": "Boxing Day (substitute day)"},
    departments=["investigations", "legal"],  # fraud and misconduct inherit it from investigations
)

ROLES = [
    # (code, name, queues, capabilities)
    ("intake-caseworker", "Intake caseworker", ["intake"], ["view", "work"]),
    ("triage-caseworker", "Triage caseworker", ["triage"], ["view", "work"]),
    ("fraud-investigator", "Fraud investigator", ["fraud-investigation"], ["view", "work"]),
    ("legal-reviewer", "Legal reviewer", ["legal-review"], ["view", "work"]),
    ("escalations-caseworker", "Escalations caseworker", ["escalations"], ["view", "work"]),
    ("floor-supervisor", "Floor supervisor", ALL_QUEUES, ["view", "supervise", "deploy"]),
    ("integration-client", "Integration client", ["intake"], ["view", "work"]),
    # A right of its own, beside deploy on the queues: replacing the live workflow is a privilege.
    ("workflow-deployer", "Workflow deployer", [], ["deploy_workflows"]),
]


@dataclass
class DemoUser:
    username: str
    first_name: str
    last_name: str
    department: str | None
    roles: list[str]
    skills: list[str] = field(default_factory=list)
    is_staff: bool = False
    is_service_account: bool = False
    can_act_on_behalf: bool = False
    act_as_departments: list[str] = field(default_factory=list)  # the act-as scope (with their subtrees)


USERS = [
    DemoUser(
        "supervisor", "Sam", "Supervisor", "investigations", ["floor-supervisor", "workflow-deployer"], is_staff=True
    ),
    DemoUser("alice", "Alice", "Adams", "investigations", ["intake-caseworker", "triage-caseworker"]),
    DemoUser("bob", "Bob", "Brown", "fraud", ["fraud-investigator"], skills=["fraud"]),
    DemoUser("carol", "Carol", "Clark", "legal", ["legal-reviewer"], skills=["legal"]),
    DemoUser("dave", "Dave", "Dixon", "investigations", ["escalations-caseworker"]),
    DemoUser(
        "integration",
        "Integration",
        "Client",
        None,
        ["integration-client"],
        is_service_account=True,
        can_act_on_behalf=True,
        act_as_departments=["investigations", "legal"],
    ),  # the caseworkers, not staff
]

# carol covers triage for two days: a temporary escalation that expires by itself.
TEMPORARY_ESCALATIONS = [("carol", "triage-caseworker", timedelta(days=2), "Covering the triage backlog")]

SUPERVISOR_CONSOLE_GROUP = "supervisor-console"
SUPERVISOR_CONSOLE_APPS = ("entitlements", "queues", "tasks", "cases", "django_celery_beat", "django_celery_results")
# Acting for other users is no supervisor's business: integrations get it, with a scope. Nor is working external
# tasks: that is for worker accounts, granted one by one.
SUPERVISOR_CONSOLE_EXCLUDED_PERMISSIONS = ("entitlements.act_on_behalf", "tasks.work_external_tasks")


# --- demo workflow and cases ---------------------------------------------------------------------------------------

DEMO_PROCESS_KEY = "onecms_case_handling"
_MODELS = Path(__file__).resolve().parent.parent / "tasks" / "bpmn"
DEMO_BPMN = _MODELS / "onecms_case_handling.bpmn"  # version 1: user tasks, gateways, a timer
# Version 2, which the demo's cases run: a records check (external task, run by cases/records_check.py on Celery), a
# wait for the message documents_received, and routing by the decision table of DEMO_DMN (a business rule task).
DEMO_BPMN_V2 = _MODELS / "onecms_case_handling_v2.bpmn"
DEMO_DMN = _MODELS / "triage_routing.dmn"
DOCUMENTS_MESSAGE = "documents_received"
# The integration that sends it for the demo (a document portal would, with the case number as business key).
DOCUMENTS_SENDER = "integration"
DEMO_CASES = 30
DEMO_CASE_PREFIX = "Demo case"
DEMO_PRIORITIES = [50, 70, 30, 90, 50, 60]
DEMO_ALLEGATION_TEXT = {
    "FRAUD": "Invoices from a supplier do not match deliveries.",
    "MISCONDUCT": "A manager is reported to have bullied staff.",
    "CONFLICT_OF_INTEREST": "A buyer awarded contracts to a relative's firm.",
}
# The people of the demo cases (invented): case n gets the subject, complainant and witness of row n % len.
DEMO_SUBJECTS = [
    [
        {
            "role": "SUBJECT",
            "full_name": "Morgan Hale",
            "email": "morgan.hale@supplier.example",
            "phone": "+44 20 7946 0101",
        },
        {"role": "COMPLAINANT", "full_name": "Priya Natarajan", "email": "priya.natarajan@example.org"},
    ],
    [
        {
            "role": "SUBJECT",
            "full_name": "Dominik Wójcik",
            "date_of_birth": "1979-04-12",
            "notes": "Line manager, stores.",
        },
        {"role": "WITNESS", "full_name": "Aoife Byrne", "phone": "+353 1 555 0142"},
    ],
    [
        {"role": "SUBJECT", "full_name": "Elliot Marsh", "email": "elliot.marsh@example.org"},
        {"role": "COMPLAINANT", "full_name": "Sam Okafor", "notes": "Asked not to be contacted by phone."},
    ],
]
DEMO_WORKER_BY_QUEUE = {
    "intake": "alice",
    "triage": "alice",
    "fraud-investigation": "bob",
    "legal-review": "carol",
    "escalations": "dave",
}


def task_variables(allegation: str, amount: int, task_key: str) -> dict:
    """What a caseworker would type into each user task of the demo workflow."""
    return {
        "intake_review": {"received_on": "2026-10-02", "received_via": "WEB", "amount_at_stake": amount},
        "chase_documents": {"chased_via": "EMAIL"},
        "triage": {"allegation_type": allegation},
        "fraud_investigation": {"recommend_action": True, "findings": "Evidence supports the allegation."},
        "misconduct_review": {"recommend_action": allegation == "MISCONDUCT", "findings": "Interviews held."},
        "legal_review": {"legal_opinion": "Refer for disciplinary action."},
        "closure": {"closure_reason": "ACTION_TAKEN"},
    }[task_key]


# The documents a portal reports with the message (merged into the case's process variables).
DOCUMENTS_VARIABLES = {"documents_received_on": "2026-10-09", "documents": ["complaint form", "supporting evidence"]}

# How far each demo case gets: (allegation type, amount at stake, steps taken). A step is whatever the case waits
# for: a user task completed, its records check run, or its documents sent. Steps beyond a case's end are skipped.
# Step 1 completes intake and leaves the records check to the Celery worker bin/run starts; from step 3 on the
# decision table has routed the case: fraud of 10,000 or more straight to the fraud team, the rest to triage.
DEMO_CASE_PLAN = [
    ("FRAUD", 250_000, 0),  # intake
    ("MISCONDUCT", 0, 0),  # intake
    ("FRAUD", 40_000, 1),  # records check (the worker runs it), then waits for its documents
    ("CONFLICT_OF_INTEREST", 0, 2),  # waits for its documents
    ("FRAUD", 120_000, 3),  # routed to the fraud team, urgently
    ("MISCONDUCT", 0, 3),  # routed to triage
    ("FRAUD", 25_000, 4),  # investigated: legal review
    ("MISCONDUCT", 0, 5),  # triaged and reviewed: legal review
    ("CONFLICT_OF_INTEREST", 60_000, 9),  # investigated as fraud, closed
    ("FRAUD", 5_000, 9),  # triaged, investigated, closed
]
