"""Case numbers come from a sequence: unique under any concurrency, with no gaps from retries to worry about."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cases", "0001_initial")]
    operations = [
        migrations.RunSQL(
            "CREATE SEQUENCE IF NOT EXISTS onecms.case_number_seq START 1",
            reverse_sql="DROP SEQUENCE IF EXISTS onecms.case_number_seq",
        )
    ]
