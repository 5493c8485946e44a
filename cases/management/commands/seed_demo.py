"""Create or refresh the demo organisation; running it again leaves the same data."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from cases import demo, records_check
from cases.models import AllegationType, Case
from cases.services import case_open
from core.errors import WorkflowError
from entitlements.models import Department, Skill, User, UserRoleAssignment, WorkflowRole
from entitlements.row_scope import system_scope
from entitlements.services import role_assignment_grant, role_save
from queues.models import WorkflowQueue
from queues.services import business_calendar_save, queue_save
from tasks.bpmn.decisions import decision_deploy
from tasks.bpmn.messages import message_correlate
from tasks.bpmn.workflows import definition_deploy, definition_deploy_if_changed
from tasks.external.services import TopicRequest, external_task_complete, external_tasks_fetch_and_lock
from tasks.models import ExternalTask, ExternalTaskStatus, ProcessInstance, WorkflowDefinition, WorkflowTask
from tasks.services import task_claim, task_complete
from tasks.sla.maintenance import refresh_dashboards

PASSWORD_BYTES = 12
SEED_WORKER_ID = "seed_demo"


class Command(BaseCommand):
    help = "Create the demo organisation (departments, queues, roles, users). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password", help="Set every demo user's password (default: a random one for new users, printed once)."
        )
        parser.add_argument(
            "--cases", type=int, default=demo.DEMO_CASES, help="Demo cases to open when there are none yet."
        )
        parser.add_argument("--no-workflows", action="store_true", help="Only the organisation: no workflow, no cases.")

    def handle(self, *args, password=None, cases=demo.DEMO_CASES, no_workflows=False, **options):
        with system_scope():  # the system's work: it seeds every queue; the services it calls act as the demo users
            if cases < 0:
                raise CommandError("--cases must be 0 or more")
            try:
                created, password_used = self.seed(password)
                if not no_workflows:
                    self.seed_workflows(cases)
            except WorkflowError as exc:
                raise CommandError(exc.detail) from exc
            if created:
                self.stdout.write(f"Created users: {', '.join(created)}")
            if password_used and (created or password):
                self.stdout.write(f"Demo password: {password_used}")
            self.stdout.write(self.style.SUCCESS("Demo organisation ready."))

    @transaction.atomic
    def seed(self, password: str | None) -> tuple[list[str], str | None]:
        departments = {}
        for code, name, parent in demo.DEPARTMENTS:
            departments[code], _ = Department.objects.update_or_create(
                dept_code=code, defaults={"dept_name": name, "parent": departments.get(parent)}
            )
        skills = {}
        for code, name in demo.SKILLS:
            skills[code], _ = Skill.objects.update_or_create(skill_code=code, defaults={"name": name})

        for spec in demo.QUEUES:
            spec = dict(spec)
            name = spec.pop("queue_name")
            spec["department"] = departments[spec.pop("department")]
            spec.pop("overflow", None)
            queue_save(queue_name=name, **spec)
        for spec in demo.QUEUES:
            if spec.get("overflow"):
                WorkflowQueue.objects.filter(queue_name=spec["queue_name"]).update(
                    overflow_queue=WorkflowQueue.objects.get(queue_name=spec["overflow"])
                )

        business_calendar_save(**demo.DEMO_CALENDAR)

        roles = {}
        for code, name, queue_names, capabilities in demo.ROLES:
            roles[code] = role_save(role_code=code, name=name, queue_names=queue_names, permissions=capabilities)

        console_group = self.supervisor_console_group()
        act_as = Permission.objects.get(content_type__app_label="entitlements", codename="act_on_behalf")
        generated = password or secrets.token_urlsafe(PASSWORD_BYTES)
        created_users = []
        users = {}
        for spec in demo.USERS:
            user, created = User.objects.update_or_create(
                username=spec.username,
                defaults={
                    "first_name": spec.first_name,
                    "last_name": spec.last_name,
                    "email": f"{spec.username}@example.org",
                    "department": departments.get(spec.department),
                    "is_staff": spec.is_staff,
                    "is_service_account": spec.is_service_account,
                    "is_active": True,
                },
            )
            if created or password:
                user.set_password(generated)
                user.save(update_fields=["password"])
            if created:
                created_users.append(spec.username)
            user.skills.set([skills[s] for s in spec.skills])
            if spec.is_staff:
                user.groups.add(console_group)
            if spec.can_act_on_behalf:
                user.user_permissions.add(act_as)
            user.act_as_departments.set([departments[code] for code in spec.act_as_departments])
            for role_code in spec.roles:
                self.ensure_assignment(user=user, role=roles[role_code])
            users[spec.username] = user

        supervisor = users["supervisor"]
        for username, role_code, duration, reason in demo.TEMPORARY_ESCALATIONS:
            self.ensure_assignment(
                user=users[username], role=roles[role_code], temporary=duration, reason=reason, granted_by=supervisor
            )
        return created_users, (generated if (created_users or password) else None)

    @transaction.atomic
    def seed_workflows(self, cases: int) -> None:
        supervisor = User.objects.get(username="supervisor")
        if not WorkflowDefinition.objects.filter(process_key=demo.DEMO_PROCESS_KEY).exists():
            definition_deploy(user=supervisor, bpmn_xml=demo.DEMO_BPMN.read_text(encoding="utf-8"))
            self.stdout.write(f"Deployed {demo.DEMO_PROCESS_KEY} version 1.")
        # Version 2 evaluates the routing decision: the decision first, the model beside it.
        decision_deploy(user=supervisor, dmn_xml=demo.DEMO_DMN.read_text(encoding="utf-8"))
        deployment = definition_deploy_if_changed(
            user=supervisor, bpmn_xml=demo.DEMO_BPMN_V2.read_text(encoding="utf-8")
        )
        if deployment.created:
            self.stdout.write(f"Deployed {demo.DEMO_PROCESS_KEY} version {deployment.definition.version}.")
        handler_account = self.ensure_handler_account()
        # Titles are sealed (not searchable): the demo's cases are the demo process's cases alice opened.
        if cases == 0 or Case.objects.filter(case_type=demo.DEMO_PROCESS_KEY, created_by__username="alice").exists():
            return
        people = {u.username: u for u in User.objects.filter(username__in=["alice", "bob", "carol", "integration"])}
        opened = []
        for index in range(cases):
            allegation, amount, stage = demo.DEMO_CASE_PLAN[index % len(demo.DEMO_CASE_PLAN)]
            case = case_open(
                user=people["alice"],
                title=f"{demo.DEMO_CASE_PREFIX} {index + 1:02d}: {AllegationType(allegation).label.lower()} report",
                allegations=[
                    {"type": allegation, "description": demo.DEMO_ALLEGATION_TEXT[allegation], "date": "2026-10-01"}
                ],
                priority=demo.DEMO_PRIORITIES[index % len(demo.DEMO_PRIORITIES)],
                subjects=demo.DEMO_SUBJECTS[index % len(demo.DEMO_SUBJECTS)],
            )
            opened.append((case, allegation, amount, stage))
        # A case whose last step leaves its records check to the worker goes last, so that the seed's own checks
        # (first come, first locked) leave it waiting.
        for case, allegation, amount, stage in sorted(opened, key=lambda plan: plan[3] == 1):
            for _ in range(stage):
                if not self.advance(case, allegation, amount, people=people, handler_account=handler_account):
                    break
        self.stdout.write(f"Opened {cases} demo cases.")
        waiting = ProcessInstance.objects.filter(
            case_mapping__case__in=[case for case, *_ in opened], waiting_messages__contains=[demo.DOCUMENTS_MESSAGE]
        ).order_by("business_key")
        checking = ExternalTask.objects.filter(
            process_instance__case_mapping__case__in=[case for case, *_ in opened], status=ExternalTaskStatus.ACTIVE
        ).order_by("process_instance__business_key")
        if waiting:
            numbers = ", ".join(instance.business_key for instance in waiting)
            self.stdout.write(f"Waiting for their documents (message {demo.DOCUMENTS_MESSAGE}): {numbers}")
        if checking:
            numbers = ", ".join(
                item.process_instance.business_key for item in checking.select_related("process_instance")
            )
            self.stdout.write(f"Records checks the Celery worker runs, then waiting for documents: {numbers}")
        refresh_dashboards()  # so the supervisor dashboard shows the demo work at once

    def advance(self, case: Case, allegation: str, amount: int, *, people, handler_account) -> bool:
        """Take the case one step: complete its open user task, run its records check, or send its documents.
        False when it waits for none of these (it has ended)."""
        instance = ProcessInstance.objects.get(case_mapping__case=case)
        task = WorkflowTask.objects.filter(process_instance=instance, status="OPEN").order_by("task_id").first()
        if task is not None:
            worker = people[demo.DEMO_WORKER_BY_QUEUE[task.queue_id]]
            task_claim(user=worker, task_id=task.pk)
            task_complete(
                user=worker,
                task_id=task.pk,
                variables=demo.task_variables(allegation, amount, task.task_definition_key),
            )
            return True
        pending = ExternalTask.objects.filter(process_instance=instance, status=ExternalTaskStatus.ACTIVE)
        if pending.exists():
            # What the Celery handler does (tasks/external/handlers.py), here at once: lock a records check, run it,
            # complete it; as a worker of the pool, oldest first, until this case's own is done.
            while pending.exists():
                locked = external_tasks_fetch_and_lock(
                    user=handler_account,
                    worker_id=SEED_WORKER_ID,
                    topics=[TopicRequest(topic_name=records_check.TOPIC, lock_duration_ms=60_000)],
                    max_tasks=1,
                )
                if not locked:
                    raise CommandError(f"the records check of {case.case_number} is locked by a worker: try again")
                external_task_complete(
                    user=handler_account,
                    external_task_id=locked[0].external_task_id,
                    worker_id=SEED_WORKER_ID,
                    variables=records_check.records_check(locked[0].business_key),
                )
            return True
        if demo.DOCUMENTS_MESSAGE in instance.waiting_messages:
            message_correlate(
                user=people[demo.DOCUMENTS_SENDER],
                message_name=demo.DOCUMENTS_MESSAGE,
                business_key=case.case_number,
                variables=demo.DOCUMENTS_VARIABLES,
            )
            return True
        return False

    def ensure_handler_account(self) -> User:
        """The worker account the Celery handlers act as (settings.EXTERNAL_TASK_HANDLER_ACCOUNT): it may work
        external tasks, and nothing else; nobody logs in with it."""
        account, created = User.objects.update_or_create(
            username=settings.EXTERNAL_TASK_HANDLER_ACCOUNT,
            defaults={
                "first_name": "Celery",
                "last_name": "handlers",
                "is_service_account": True,
                "is_staff": False,
                "is_active": True,
            },
        )
        if created:
            account.set_unusable_password()
            account.save(update_fields=["password"])
        account.user_permissions.add(
            Permission.objects.get(content_type__app_label="tasks", codename="work_external_tasks")
        )
        return account

    def ensure_assignment(self, *, user, role: WorkflowRole, temporary=None, reason="", granted_by=None):
        existing = UserRoleAssignment.objects.filter(
            user=user, role=role, is_temporary_escalation=bool(temporary), revoked_at__isnull=True
        )
        if existing.exists():
            return
        now = timezone.now()
        role_assignment_grant(
            user=user,
            role=role,
            granted_by=granted_by,
            valid_from=now,
            valid_until=now + temporary if temporary else None,
            temporary_escalation=bool(temporary),
            reason=reason,
        )

    def supervisor_console_group(self) -> Group:
        group, _ = Group.objects.get_or_create(name=demo.SUPERVISOR_CONSOLE_GROUP)
        permissions = Permission.objects.filter(content_type__app_label__in=demo.SUPERVISOR_CONSOLE_APPS)
        for label in demo.SUPERVISOR_CONSOLE_EXCLUDED_PERMISSIONS:
            app_label, codename = label.split(".")
            permissions = permissions.exclude(content_type__app_label=app_label, codename=codename)
        group.permissions.set(permissions)  # also takes back what an earlier seed gave
        return group
