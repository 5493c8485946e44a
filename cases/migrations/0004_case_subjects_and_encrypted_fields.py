"""Case subjects (personal fields encrypted, keyed hashes for exact lookups) and encrypted case text.

The descriptions of existing cases and their allegations are encrypted here, under the current key of
FIELD_ENCRYPTION_KEYS (core/encryption.py); the OPENED events lose the copies of the descriptions they held. Run it
before case_events becomes append-only for the role that migrates.
"""

import core.encrypted_fields
import core.encryption
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

BATCH = 500


def seal_existing_case_text(apps, schema_editor):
    """Encrypt the descriptions already stored in plaintext: the fields read plaintext as it is and seal on write.

    The OPENED events copied each allegation with its description: keep their type and date only (the case row
    holds the descriptions, sealed)."""
    Case = apps.get_model("cases", "Case")
    CaseEvent = apps.get_model("cases", "CaseEvent")
    last = 0
    while batch := list(
        Case.objects.filter(pk__gt=last).order_by("pk").only("pk", "description", "allegations")[:BATCH]
    ):
        Case.objects.bulk_update(batch, ["description", "allegations"])
        last = batch[-1].pk
    opened = CaseEvent.objects.filter(event_type="OPENED", new_values__has_key="allegations").order_by("pk")
    for event in opened.iterator(chunk_size=BATCH):
        allegations = event.new_values.get("allegations")
        if isinstance(allegations, list) and any(isinstance(a, dict) and "description" in a for a in allegations):
            kept = [
                {k: v for k, v in a.items() if k != "description"} if isinstance(a, dict) else a for a in allegations
            ]
            CaseEvent.objects.filter(pk=event.pk).update(new_values={**event.new_values, "allegations": kept})


def open_case_text(apps, schema_editor):
    """Backwards: store the descriptions in plaintext again (the redacted events stay redacted)."""
    Case = apps.get_model("cases", "Case")
    last = 0
    while batch := list(
        Case.objects.filter(pk__gt=last).order_by("pk").only("pk", "description", "allegations")[:BATCH]
    ):
        for case in batch:
            Case.objects.filter(pk=case.pk).update(
                description=models.Value(str(case.description), output_field=models.TextField()),
                allegations=models.Value(case.allegations, output_field=models.JSONField()),
            )
        last = batch[-1].pk


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0003_mapping_hop_queues_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="case",
            name="allegations",
            field=core.encrypted_fields.EncryptedKeysJSONField(
                blank=True, default=list, encrypted_keys=["description"], help_text="List of {type, description, date}."
            ),
        ),
        migrations.AlterField(
            model_name="case",
            name="description",
            field=core.encrypted_fields.EncryptedTextField(blank=True),
        ),
        migrations.CreateModel(
            name="CaseSubject",
            fields=[
                ("subject_id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "role",
                    models.CharField(
                        choices=[("SUBJECT", "Subject"), ("COMPLAINANT", "Complainant"), ("WITNESS", "Witness")],
                        max_length=20,
                    ),
                ),
                ("full_name", core.encrypted_fields.EncryptedCharField(max_length=300)),
                ("email", core.encrypted_fields.EncryptedEmailField(blank=True, max_length=254)),
                ("phone", core.encrypted_fields.EncryptedCharField(blank=True, max_length=50)),
                ("date_of_birth", core.encrypted_fields.EncryptedDateField(blank=True, null=True)),
                ("notes", core.encrypted_fields.EncryptedTextField(blank=True)),
                (
                    "email_hash",
                    core.encrypted_fields.KeyedHashField(
                        db_index=True, normaliser=core.encryption.normalise_email, source="email"
                    ),
                ),
                (
                    "name_hash",
                    core.encrypted_fields.KeyedHashField(
                        db_index=True, normaliser=core.encryption.normalise_name, source="full_name"
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "case",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="subjects", to="cases.case"
                    ),
                ),
            ],
            options={
                "db_table": 'onecms"."case_subjects',
                "ordering": ["case", "subject_id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("role__in", ["SUBJECT", "COMPLAINANT", "WITNESS"])),
                        name="case_subject_role_valid",
                    )
                ],
            },
        ),
        migrations.RunPython(seal_existing_case_text, open_case_text),
    ]
