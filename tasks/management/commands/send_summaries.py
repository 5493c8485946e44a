"""Send the daily or weekly summary emails to supervisors now (beat sends them on its own schedule)."""

from django.core.management.base import BaseCommand, CommandError

from entitlements.models import User
from entitlements.row_scope import system_scope
from tasks.console.summaries import PERIODS, summary_message, summary_recipients, supervisor_summary


class Command(BaseCommand):
    help = "Email each supervisor (or one) the summary of their queues over the last day or week."

    def add_arguments(self, parser):
        parser.add_argument("--period", choices=list(PERIODS), default="daily")
        parser.add_argument("--user", help="Only this supervisor (a username).")
        parser.add_argument("--dry-run", action="store_true", help="Print the plain-text emails; send nothing.")

    def handle(self, *args, period="daily", user=None, dry_run=False, **options):
        if user:
            with system_scope():
                chosen = User.objects.filter(username=user, is_active=True).first()
            if chosen is None:
                raise CommandError(f"no active user {user!r}")
            recipients = [chosen]
        else:
            recipients = summary_recipients()
        sent = 0
        for recipient in recipients:
            if not recipient.email:
                self.stdout.write(f"{recipient.username}: no email address, skipped")
                continue
            summary = supervisor_summary(user=recipient, period=period)
            if summary is None:
                self.stdout.write(f"{recipient.username}: supervises no queue, skipped")
                continue
            message = summary_message(summary=summary)
            sent += 1
            if dry_run:
                self.stdout.write(f"To: {recipient.email}\nSubject: {message.subject}\n\n{message.body}")
                continue
            message.send(fail_silently=False)
            self.stdout.write(f"{recipient.username}: sent to {recipient.email}")
        self.stdout.write(f"Total: {'would send' if dry_run else 'sent'} {sent}.")
