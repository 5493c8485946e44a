"""The cases app's row tests are planned once per session, not once per row (plan_cache_mode = force_generic_plan).

PL/pgSQL plans a function's statement afresh on each call for as long as a fresh plan looks cheaper than the generic
one, judged against the average of the plans made so far in the session: a connection that ran the function while
the tables were small (or for a small queue array) keeps re-planning it on every call from then on. Each planning
of these statements probes the ends of the mappings' and tasks' indexes to price a merge join, and where the ends
hold dead entries (a rolled-back load, rows archived) the probe reads them all again, for every case a page of the
case list tests (onecms.case_has_task_in_queues): tens of thousands of index entries for a page of 50.
The statements probe one case, instance or task by key; the generic plan is the one they want whatever the value.

The row-level security functions of the tasks app get the same in tasks 0051. The setting is added to the functions
as defined (cases/sql/*.sql hold their current text); backwards, removed.
"""

from django.db import migrations

FUNCTIONS = (
    "onecms.case_has_task_in_queues(bigint, text[])",
    "onecms.case_reached_by_acting_queues(bigint)",
    "onecms.case_visible_to_acting_user(bigint)",
    "onecms.process_instance_of_visible_case(bigint)",
    "onecms.task_of_visible_case(bigint)",
)


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0010_case_list_walk"),
    ]

    operations = [
        migrations.RunSQL(
            [f"ALTER FUNCTION {function} SET plan_cache_mode = force_generic_plan" for function in FUNCTIONS],
            reverse_sql=[f"ALTER FUNCTION {function} RESET plan_cache_mode" for function in FUNCTIONS],
        ),
    ]
