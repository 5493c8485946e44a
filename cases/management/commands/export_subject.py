"""Right of access: write everything held about one person to a JSON file."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from cases.privacy.export import person_export
from core.errors import WorkflowError
from entitlements.models import User
from entitlements.row_scope import system_scope


class Command(BaseCommand):
    help = (
        "Write a JSON document of everything held about a user (--user) or a case subject (--subject-email) to "
        "--output. The export is recorded in the security audit."
    )

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", metavar="USERNAME")
        who.add_argument("--subject-email", metavar="EMAIL")
        parser.add_argument("--output", required=True, metavar="FILE", help="Where to write the JSON ('-': stdout).")
        parser.add_argument("--as-user", metavar="USERNAME", help="Who asks (recorded; default: the system).")

    def handle(self, *args, user=None, subject_email=None, output, as_user=None, **options):
        with system_scope():  # an operator's command over every case and person: RLS scope of the system
            exported_by = None
            if as_user:
                exported_by = User.objects.filter(username=as_user, is_active=True).first()
                if exported_by is None:
                    raise CommandError(f"no active user {as_user!r}")
            target = None if output == "-" else Path(output)
            if target is not None and not target.parent.is_dir():
                raise CommandError(f"no such directory: {target.parent}")
            try:
                document = person_export(username=user, subject_email=subject_email, exported_by=exported_by)
            except WorkflowError as exc:
                raise CommandError(exc.detail) from None
            text = json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
            if target is None:
                self.stdout.write(text)
                return
            target.write_text(text + "\n", encoding="utf-8")
            counts = ", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in document.items() if isinstance(v, list))
            self.stdout.write(f"Wrote {target}: {counts}.")
