"""Two security audit events: a person's data erased (who erased whom, when, why) and exported (right of access)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('entitlements', '0013_access_audit_append_only'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='securityevent',
            name='security_event_type_valid',
        ),
        migrations.AlterField(
            model_name='securityevent',
            name='event_type',
            field=models.CharField(choices=[('LOGIN_SUCCESS', 'Login Success'), ('LOGIN_FAILURE', 'Login Failure'), ('LOGOUT', 'Logout'), ('PERMISSION_DENIED', 'Permission Denied'), ('ROLE_GRANTED', 'Role Granted'), ('ROLE_REVOKED', 'Role Revoked'), ('ACT_AS', 'Act As'), ('TOKEN_CREATED', 'Token Created'), ('TOKEN_REVOKED', 'Token Revoked'), ('LOGIN_LOCKED_OUT', 'Login Locked Out'), ('PRIVILEGE_CHANGED', 'Privilege Changed'), ('WORKFLOW_DEPLOYED', 'Workflow Deployed'), ('PERSONAL_DATA_ERASED', 'Personal Data Erased'), ('PERSONAL_DATA_EXPORTED', 'Personal Data Exported')], max_length=40),
        ),
        migrations.AddConstraint(
            model_name='securityevent',
            constraint=models.CheckConstraint(condition=models.Q(('event_type__in', ['LOGIN_SUCCESS', 'LOGIN_FAILURE', 'LOGOUT', 'PERMISSION_DENIED', 'ROLE_GRANTED', 'ROLE_REVOKED', 'ACT_AS', 'TOKEN_CREATED', 'TOKEN_REVOKED', 'LOGIN_LOCKED_OUT', 'PRIVILEGE_CHANGED', 'WORKFLOW_DEPLOYED', 'PERSONAL_DATA_ERASED', 'PERSONAL_DATA_EXPORTED'])), name='security_event_type_valid'),
        ),
    ]
