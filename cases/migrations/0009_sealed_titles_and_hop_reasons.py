"""Case titles sealed like the descriptions; the title an OPENED event copies and each routing hop's reason too.

The titles already stored are sealed here, under the current key of FIELD_ENCRYPTION_KEYS (core/encryption.py).
Case events and routing hops are append-only to the role that migrates: the titles and reasons they already hold
are sealed by `manage.py rotate_encryption_keys --encrypt-plaintext`, run as the maintenance role (README).
"""

import core.encrypted_fields
from django.db import migrations, models

BATCH = 500


def seal_existing_titles(apps, schema_editor):
    """The field reads plaintext as it is and seals on write: each title is written back once."""
    Case = apps.get_model("cases", "Case")
    last = 0
    while batch := list(Case.objects.filter(pk__gt=last).order_by("pk").only("pk", "title")[:BATCH]):
        Case.objects.bulk_update(batch, ["title"])
        last = batch[-1].pk


def open_titles(apps, schema_editor):
    """Backwards: the titles in plaintext again (varchar(300) holds them: a title is at most 300 characters)."""
    Case = apps.get_model("cases", "Case")
    last = 0
    while batch := list(Case.objects.filter(pk__gt=last).order_by("pk").only("pk", "title")[:BATCH]):
        for case in batch:
            Case.objects.filter(pk=case.pk).update(title=models.Value(str(case.title), output_field=models.TextField()))
        last = batch[-1].pk


class Migration(migrations.Migration):

    dependencies = [
        ('cases', '0008_row_level_security'),
    ]

    operations = [
        migrations.AlterField(
            model_name='case',
            name='title',
            field=core.encrypted_fields.EncryptedCharField(clear_values=['[redacted]'], max_length=300),
        ),
        migrations.AlterField(
            model_name='caseevent',
            name='new_values',
            field=core.encrypted_fields.EncryptedKeysJSONField(blank=True, default=dict, encrypted_keys=['title']),
        ),
        migrations.AlterField(
            model_name='caseevent',
            name='old_values',
            field=core.encrypted_fields.EncryptedKeysJSONField(blank=True, default=dict, encrypted_keys=['title']),
        ),
        migrations.AlterField(
            model_name='caseworkflowmapping',
            name='routing_history',
            field=core.encrypted_fields.EncryptedKeysJSONField(blank=True, default=list, encrypted_keys=['reason'], help_text='List of {from_queue, to_queue, at, by, reason}.'),
        ),
        migrations.RunPython(seal_existing_titles, open_titles),
    ]
