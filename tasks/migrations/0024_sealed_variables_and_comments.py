"""Sensitive form values are stored sealed in variables and engine state; task history comments are encrypted.

No data changes: no form field was sensitive before this, and history comments already written stay plaintext
until `rotate_encryption_keys --encrypt-plaintext` (task history is append-only).
"""

import core.encrypted_fields
import tasks.models
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0023_alert_delivery_attempts"),
    ]

    operations = [
        migrations.AlterField(
            model_name="processinstance",
            name="engine_state",
            field=tasks.models.InstanceStateField(
                blank=True, help_text="The engine's serialised workflow state.", null=True
            ),
        ),
        migrations.AlterField(
            model_name="processinstance",
            name="variables",
            field=core.encrypted_fields.SealedValuesJSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="taskhistory",
            name="comment",
            field=core.encrypted_fields.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name="workflowtask",
            name="variables",
            field=core.encrypted_fields.SealedValuesJSONField(blank=True, default=dict),
        ),
    ]
