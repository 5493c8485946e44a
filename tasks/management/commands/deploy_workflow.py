"""Deploy a BPMN 2.0 file as the next version of its process key, unless that version is live already."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.errors import WorkflowError
from entitlements.models import User
from tasks.bpmn.decisions import decision_deploy
from tasks.bpmn.workflows import definition_deploy_if_changed


class Command(BaseCommand):
    help = (
        "Deploy FILE (BPMN 2.0) as the next version of its process key (a .dmn file: each decision as the next "
        "version of its key); a file (and SLA configuration) identical to "
        "the version in use makes no new version."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument(
            "--as-user",
            default="supervisor",
            help="Deploy as this user (needs the deploy_workflows right and deploy on the model's queues).",
        )
        parser.add_argument("--sla-config", help="JSON file with the definition's SLA configuration.")

    def handle(self, *args, file, as_user, sla_config=None, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"no such file: {file}")
        user = User.objects.filter(username=as_user, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {as_user!r}")
        if path.suffix.lower() == ".dmn":
            self._deploy_decisions(user, path)
            return
        try:
            config = json.loads(Path(sla_config).read_text()) if sla_config else None
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read SLA config: {exc}") from exc
        try:
            deployment = definition_deploy_if_changed(
                user=user, bpmn_xml=path.read_text(encoding="utf-8"), sla_config=config
            )
        except WorkflowError as exc:
            raise CommandError(exc.detail) from exc
        definition = deployment.definition
        if deployment.created:
            self.stdout.write(f"Deployed {definition.process_key} version {definition.version}.")
        else:
            self.stdout.write(f"{definition.process_key} unchanged: still version {definition.version}.")

    def _deploy_decisions(self, user, path: Path) -> None:
        """A .dmn file: each decision of it as the next version of its key."""
        try:
            deployment = decision_deploy(user=user, dmn_xml=path.read_text(encoding="utf-8"))
        except WorkflowError as exc:
            raise CommandError(exc.detail) from exc
        for decision in deployment.decisions:
            if deployment.created:
                self.stdout.write(f"Deployed decision {decision.decision_key} version {decision.version}.")
            else:
                self.stdout.write(f"Decision {decision.decision_key} unchanged: still version {decision.version}.")
