"""Issue (or with --revoke, revoke) API tokens of a user. The new key is the last word of the last line."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.errors import WorkflowError
from entitlements.models import User
from entitlements.services import api_token_create, api_token_revoke


def positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Issue one more API token for USERNAME and print its key, once: only its digest is stored. The user's other "
        "tokens keep working unless --replace is given. --revoke revokes the user's tokens (only those named --name, "
        "if given)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--expires-days",
            type=positive_int,
            default=None,
            help=f"days until the token expires (default API_TOKEN_TTL_DAYS, {settings.API_TOKEN_TTL_DAYS})",
        )
        parser.add_argument("--read-only", action="store_true", help="the token may only GET, HEAD and OPTIONS")
        parser.add_argument("--name", default=None, help="what the token is for (e.g. the integration's name)")
        parser.add_argument("--replace", action="store_true", help="revoke the user's other tokens")
        parser.add_argument("--revoke", action="store_true", help="revoke the user's tokens instead of issuing one")

    def handle(
        self, *args, username, expires_days=None, read_only=False, name=None, replace=False, revoke=False, **options
    ):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if revoke:
            revoked = api_token_revoke(user=user, name=name)
            which = f" named {name!r}" if name is not None else ""
            self.stdout.write(f"Revoked {revoked} token(s){which} of {username}.")
            return
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive")
        try:
            issued = api_token_create(
                user=user,
                name=name or "",
                read_only=read_only,
                replace=replace,
                expires_in=timedelta(days=expires_days) if expires_days else None,
            )
        except WorkflowError as exc:
            raise CommandError(exc.detail) from None
        if issued.replaced:
            self.stdout.write(f"Replaced (revoked) {issued.replaced} earlier token(s) of {username}.")
        else:
            self.stdout.write(f"Added a token: {username} now holds {issued.held} token(s).")
        scope = "read-only" if read_only else "read-write"
        self.stdout.write(
            f"{scope.capitalize()} token, expires {issued.token.expiry:%Y-%m-%d %H:%M} UTC. Copy the key now: "
            "it cannot be shown again."
        )
        self.stdout.write(f"API token for {username}: {issued.key}")
