"""Create (or with --revoke, revoke) the API token of a user. The token is the last word of the last line."""
from django.core.management.base import BaseCommand, CommandError

from entitlements.models import User
from entitlements.services import api_token_create, api_token_revoke


class Command(BaseCommand):
    help = "Create a new API token for USERNAME (replacing any previous one), or revoke it with --revoke."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--revoke", action="store_true", help="Revoke the user's token instead.")

    def handle(self, *args, username, revoke=False, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive")
        if revoke:
            revoked = api_token_revoke(user=user)
            self.stdout.write(f"Token of {username} {'revoked' if revoked else 'did not exist'}.")
            return
        token = api_token_create(user=user)
        self.stdout.write(f"API token for {username}: {token.key}")
