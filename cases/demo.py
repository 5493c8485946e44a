"""The demo organisation: departments, skills, queues, roles and users. Applied by `manage.py seed_demo`."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

DEPARTMENTS = [
    # (code, name, parent code)
    ("investigations", "Investigations", None),
    ("fraud", "Fraud", "investigations"),
    ("misconduct", "Misconduct", "investigations"),
    ("legal", "Legal", None),
]

SKILLS = [("fraud", "Fraud investigation"), ("legal", "Legal review")]

QUEUES = [
    dict(queue_name="intake", display_name="Intake", queue_type="STANDARD", department="investigations",
         sla_default_hours=24, max_capacity=200, routing_strategy="ROUND_ROBIN", overflow="triage"),
    dict(queue_name="triage", display_name="Triage", queue_type="STANDARD", department="investigations",
         sla_default_hours=48, max_capacity=200, routing_strategy="LEAST_LOADED"),
    dict(queue_name="fraud-investigation", display_name="Fraud investigation", queue_type="SPECIALIZED",
         department="fraud", sla_default_hours=240, max_capacity=100, routing_strategy="SKILL_BASED",
         required_skills=["fraud"]),
    dict(queue_name="legal-review", display_name="Legal review", queue_type="SPECIALIZED", department="legal",
         sla_default_hours=120, max_capacity=50, routing_strategy="LEAST_LOADED"),
    dict(queue_name="escalations", display_name="Escalations", queue_type="PRIORITY", department="investigations",
         sla_default_hours=8, max_capacity=50, routing_strategy="PRIORITY_WEIGHTED", priority_weight=3),
]

ALL_QUEUES = [q["queue_name"] for q in QUEUES]

ROLES = [
    # (code, name, queues, capabilities)
    ("intake-caseworker", "Intake caseworker", ["intake"], ["view", "work"]),
    ("triage-caseworker", "Triage caseworker", ["triage"], ["view", "work"]),
    ("fraud-investigator", "Fraud investigator", ["fraud-investigation"], ["view", "work"]),
    ("legal-reviewer", "Legal reviewer", ["legal-review"], ["view", "work"]),
    ("escalations-caseworker", "Escalations caseworker", ["escalations"], ["view", "work"]),
    ("floor-supervisor", "Floor supervisor", ALL_QUEUES, ["view", "supervise", "deploy"]),
    ("integration-client", "Integration client", ["intake"], ["view", "work"]),
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


USERS = [
    DemoUser("supervisor", "Sam", "Supervisor", "investigations", ["floor-supervisor"], is_staff=True),
    DemoUser("alice", "Alice", "Adams", "investigations", ["intake-caseworker", "triage-caseworker"]),
    DemoUser("bob", "Bob", "Brown", "fraud", ["fraud-investigator"], skills=["fraud"]),
    DemoUser("carol", "Carol", "Clark", "legal", ["legal-reviewer"], skills=["legal"]),
    DemoUser("integration", "Integration", "Client", None, ["integration-client"], is_service_account=True,
             can_act_on_behalf=True),
]

# carol covers triage for two days: a temporary escalation that expires by itself.
TEMPORARY_ESCALATIONS = [("carol", "triage-caseworker", timedelta(days=2), "Covering the triage backlog")]

SUPERVISOR_CONSOLE_GROUP = "supervisor-console"
SUPERVISOR_CONSOLE_APPS = ("entitlements", "queues", "tasks", "cases", "django_celery_beat", "authtoken")
