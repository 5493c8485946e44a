"""Erase one person's personal data everywhere: a departed user, or a case subject (right to be forgotten)."""

from django.core.management.base import BaseCommand, CommandError

from cases.models import CaseSubject
from cases.privacy.erasure import case_subjects_erase, user_erase
from cases.selectors import case_subjects_matching
from core.errors import WorkflowError
from entitlements.models import User
from entitlements.row_scope import system_scope


class Command(BaseCommand):
    help = (
        "Erase a person: their names, email and username replaced by a pseudonym in every table, history kept with "
        "the same rows; the erasure is recorded in the security audit. Give exactly one of --user, --subject-email, "
        "--subject-id, and --reason."
    )

    def add_arguments(self, parser):
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user", metavar="USERNAME", help="A user (e.g. one who has left).")
        who.add_argument("--subject-email", metavar="EMAIL", help="Every case subject with this email address.")
        who.add_argument("--subject-id", metavar="ID", help="One case subject, by id.")
        parser.add_argument("--reason", required=True, help="Why (recorded; the person's name is removed from it).")
        parser.add_argument("--as-user", metavar="USERNAME", help="The superuser asking (default: the system).")

    def handle(self, *args, user=None, subject_email=None, subject_id=None, reason, as_user=None, **options):
        with system_scope():  # an operator's command over every case and person: RLS scope of the system
            erased_by = None
            if as_user:
                erased_by = User.objects.filter(username=as_user, is_active=True).first()
                if erased_by is None:
                    raise CommandError(f"no active user {as_user!r}")
            try:
                if user is not None:
                    target = User.objects.filter(username=user).first()
                    if target is None:
                        raise CommandError(f"no user {user!r}")
                    result = user_erase(user_id=target.pk, reason=reason, erased_by=erased_by)
                    who = f"user {user!r}"
                else:
                    subject_ids = self.subject_ids(subject_email=subject_email, subject_id=subject_id)
                    result = case_subjects_erase(subject_ids=subject_ids, reason=reason, erased_by=erased_by)
                    who = f"{len(subject_ids)} case subject(s)"
            except WorkflowError as exc:
                raise CommandError(exc.detail) from None
            rows = sum(result.rows.values())
            self.stdout.write(
                f"Erased {who}: now {result.pseudonym}; {rows} row(s) rewritten, {result.sessions_ended} session(s) "
                f"ended, {result.tokens_revoked} token(s) revoked; recorded as security event {result.event_id}."
            )

    def subject_ids(self, *, subject_email, subject_id) -> list[int]:
        if subject_id is not None:
            try:
                pk = int(subject_id)
            except ValueError:
                raise CommandError(f"--subject-id must be a whole number, got {subject_id!r}") from None
            if not CaseSubject.objects.filter(pk=pk).exists():
                raise CommandError(f"no case subject {pk}")
            return [pk]
        ids = list(case_subjects_matching(email=subject_email).order_by("subject_id").values_list("pk", flat=True))
        if not ids:
            raise CommandError(f"no case subject with email {subject_email!r}")
        return ids
