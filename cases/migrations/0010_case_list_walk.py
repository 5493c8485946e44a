"""The case list: onecms.case_has_task_in_queues for its walk, onecms.case_scope_estimate for its count, and the
mappings' covering index by process instance for its matches.

The list (cases/selectors.py: case_list) reads cases newest first by primary key and tests each with the function
(its docstring says why a function rather than a subquery), so a page reads about a page of cases whatever the size
of the scope. A small scope is read from its matches instead: the tasks of the caller's queues (tasks 0027's index
on queue and process instance), then their mappings by process instance, whose case id this index carries, so
neither read visits the table's rows.

Built CONCURRENTLY (so the migration is not atomic): on a large mapping table a plain CREATE INDEX would block every
case opened for as long as the build takes. Django's schema editor cannot find or drop indexes of a schema-qualified
table by name, so the database side is written out; the state is Django's.
"""

from django.db import migrations, models

FUNCTION = """
-- onecms.case_has_task_in_queues: whether a workflow of the case has a task in one of the named queues, the queue
-- arm of cases/selectors.py: cases_visible_to, asked per case by the case list's walk (cases/selectors.py:
-- case_list), which reads cases newest first and stops when its page is full. A function rather than an EXISTS
-- subquery: PostgreSQL may turn such a subquery into a hash of every match (reading the whole scope for one page),
-- since it prices the subquery for a scan of the whole table, not for the LIMIT; a function call is evaluated per
-- row read. SECURITY DEFINER: it reads the mappings and tasks as their owner, past their policies (whose own checks
-- of the case would double the walk's cost), so it counts only the named queues the acting user may view
-- (entitlements.acting_queue_names), or any in a scope that reads every row: it answers nothing the cases' policy
-- (onecms.case_reached_by_acting_queues) does not already grant.
CREATE OR REPLACE FUNCTION onecms.case_has_task_in_queues(p_case_id bigint, p_queue_names text[])
RETURNS boolean
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, onecms AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM onecms.case_workflow_mapping m
         WHERE m.case_id = p_case_id
           AND EXISTS (SELECT 1 FROM flowable.workflow_tasks t
                        WHERE t.process_instance_id = m.process_instance_id
                          AND t.queue_name = ANY (p_queue_names)
                          AND (t.queue_name = ANY (entitlements.acting_queue_names())
                               OR entitlements.acting_scope() IN ('system', 'superuser')))
    );
END
$$;

-- onecms.case_scope_estimate: the planner's estimate of how many cases have a task in the named queues (the queue
-- arm of cases/selectors.py: cases_visible_to), for the case list's count ("about 1.2 million") and for its choice
-- between walking the cases and reading the matches. Nothing is read but the planner's statistics. SECURITY
-- DEFINER: planned as the caller, the row-level security policies' own filters (functions the planner cannot see
-- into) would scale the estimate down by a guessed selectivity; as the owner the plan is of the rows themselves. It
-- answers a number the caller's pg_stats already give (tasks per queue), never a row.
CREATE OR REPLACE FUNCTION onecms.case_scope_estimate(p_queue_names text[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, onecms AS $$
DECLARE
    v_plan json;
BEGIN
    EXECUTE format(
        'EXPLAIN (FORMAT JSON) SELECT m.case_id FROM onecms.case_workflow_mapping m'
        ' WHERE m.process_instance_id IN (SELECT t.process_instance_id FROM flowable.workflow_tasks t'
        ' WHERE t.queue_name = ANY (%L::text[]))', p_queue_names)
      INTO v_plan;
    RETURN (v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint;
END
$$;
"""

FUNCTION_REVERSE = """
DROP FUNCTION IF EXISTS onecms.case_scope_estimate(text[]);
DROP FUNCTION IF EXISTS onecms.case_has_task_in_queues(bigint, text[]);
"""

INDEX = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_case_mapping_instance_case ON onecms.case_workflow_mapping "
    "(process_instance_id) INCLUDE (case_id)"
)
INDEX_REVERSE = "DROP INDEX CONCURRENTLY IF EXISTS onecms.idx_case_mapping_instance_case"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("cases", "0009_sealed_titles_and_hop_reasons"),
    ]

    operations = [
        migrations.RunSQL(FUNCTION, reverse_sql=FUNCTION_REVERSE),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="caseworkflowmapping",
                    index=models.Index(
                        fields=["process_instance"], include=["case"], name="idx_case_mapping_instance_case"
                    ),
                ),
            ],
            database_operations=[migrations.RunSQL(INDEX, reverse_sql=INDEX_REVERSE)],
        ),
    ]
