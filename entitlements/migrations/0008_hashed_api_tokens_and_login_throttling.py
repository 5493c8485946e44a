"""Hashed, expiring API tokens (django-rest-knox) instead of DRF's plaintext ones; login lockouts in the audit;
a tally of failed authentications; the token lookup memory's NOTIFY triggers (0006) dropped.

Existing DRF tokens keep working: each key's SHA-512 digest (what knox compares) moves to
entitlements.api_tokens with a 90-day expiry, and the plaintext table is emptied. Going back does not bring the
plaintext keys back: tokens would have to be reissued.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

DROP_TOKEN_MEMORY_TRIGGERS = """
DROP TRIGGER IF EXISTS users_delete_notify_auth_changed ON entitlements.users;
DROP TRIGGER IF EXISTS users_update_notify_auth_changed ON entitlements.users;
DROP TRIGGER IF EXISTS authtoken_token_notify_auth_changed ON public.authtoken_token;
DROP FUNCTION IF EXISTS entitlements.notify_auth_changed();
"""

# knox's digest of a key is the hex SHA-512 of its UTF-8 bytes, and it finds candidates by the first 15 characters.
MOVE_DRF_TOKENS = """
INSERT INTO entitlements.api_tokens (digest, token_key, user_id, created, expiry, name, read_only)
SELECT encode(sha512(convert_to(key, 'UTF8')), 'hex'), left(key, 15), user_id, created, now() + interval '90 days',
       'moved from the plaintext token table', false
FROM public.authtoken_token;
DELETE FROM public.authtoken_token;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('entitlements', '0007_privilege_changes_and_act_as_scope'),
        ('authtoken', '0004_alter_tokenproxy_options'),
    ]

    operations = [
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('digest', models.CharField(max_length=128, primary_key=True, serialize=False)),
                ('token_key', models.CharField(db_index=True, max_length=25)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('expiry', models.DateTimeField(blank=True, null=True)),
                ('name', models.CharField(blank=True, max_length=100)),
                ('read_only', models.BooleanField(default=False, help_text='Only GET, HEAD and OPTIONS requests.')),
                ('last_used_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'verbose_name': 'API token',
                'db_table': 'entitlements"."api_tokens',
                'ordering': ['-created'],
            },
        ),
        migrations.CreateModel(
            name='AuthFailureTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('remote_addr', models.GenericIPAddressField(blank=True, null=True)),
                ('window_start', models.DateTimeField()),
                ('failures', models.PositiveIntegerField(default=0)),
                ('throttled', models.PositiveIntegerField(default=0)),
                ('last_username', models.CharField(blank=True, max_length=150)),
                ('last_path', models.CharField(blank=True, max_length=500)),
                ('last_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'db_table': 'entitlements"."auth_failure_tallies',
                'ordering': ['-window_start'],
            },
        ),
        migrations.RemoveConstraint(
            model_name='securityevent',
            name='security_event_type_valid',
        ),
        migrations.AlterField(
            model_name='securityevent',
            name='event_type',
            field=models.CharField(choices=[('LOGIN_SUCCESS', 'Login Success'), ('LOGIN_FAILURE', 'Login Failure'), ('LOGOUT', 'Logout'), ('PERMISSION_DENIED', 'Permission Denied'), ('ROLE_GRANTED', 'Role Granted'), ('ROLE_REVOKED', 'Role Revoked'), ('ACT_AS', 'Act As'), ('TOKEN_CREATED', 'Token Created'), ('TOKEN_REVOKED', 'Token Revoked'), ('LOGIN_LOCKED_OUT', 'Login Locked Out'), ('PRIVILEGE_CHANGED', 'Privilege Changed'), ('WORKFLOW_DEPLOYED', 'Workflow Deployed')], max_length=40),
        ),
        migrations.AddConstraint(
            model_name='securityevent',
            constraint=models.CheckConstraint(condition=models.Q(('event_type__in', ['LOGIN_SUCCESS', 'LOGIN_FAILURE', 'LOGOUT', 'PERMISSION_DENIED', 'ROLE_GRANTED', 'ROLE_REVOKED', 'ACT_AS', 'TOKEN_CREATED', 'TOKEN_REVOKED', 'LOGIN_LOCKED_OUT', 'PRIVILEGE_CHANGED', 'WORKFLOW_DEPLOYED'])), name='security_event_type_valid'),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='created_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='user',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='auth_token_set', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='authfailuretally',
            constraint=models.UniqueConstraint(fields=('remote_addr', 'window_start'), name='auth_failure_tally_per_address_window', nulls_distinct=False),
        ),
        migrations.RunSQL(DROP_TOKEN_MEMORY_TRIGGERS, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(MOVE_DRF_TOKENS, reverse_sql=migrations.RunSQL.noop),
    ]
