"""Database health: two functions that show the application role this database's sessions and the standbys, and the
permission of the supervisor console's database health page.

- flowable.database_activity() and flowable.database_replication() run with their owner's rights (SECURITY
  DEFINER): the owner holds pg_read_all_stats (create_database_roles grants it), so the application role sees every
  session's statement and the replicas' lag through them, and nothing else of the cluster. core/db_roles.py grants
  EXECUTE to the application role only.
- tasks.view_database_health: who may open the page (tasks/console/database_health.py).
"""

from django.db import migrations

FUNCTIONS = """
-- database_activity: the client sessions of this database as pg_stat_activity shows them to a holder of
-- pg_read_all_stats (the owner role; core/db_roles.py grants it), each with the sessions blocking it and since when it
-- waits for a lock. The database health page and /metrics read it as the application role, which then sees every
-- session's statement (not only its own login's) without holding a cluster-wide monitoring role itself.
CREATE OR REPLACE FUNCTION flowable.database_activity()
 RETURNS TABLE(pid integer, role_name text, application_name text, client_addr text, state text, wait_event_type text, wait_event text, backend_start timestamp with time zone, xact_start timestamp with time zone, query_start timestamp with time zone, lock_wait_start timestamp with time zone, query text, blocking_pids integer[])
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog'
AS $function$
    SELECT a.pid, a.usename::text, a.application_name, host(a.client_addr), a.state, a.wait_event_type, a.wait_event,
           a.backend_start, a.xact_start, a.query_start,
           (SELECT min(l.waitstart) FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted),
           a.query, pg_blocking_pids(a.pid)
      FROM pg_stat_activity a
     WHERE a.datname = current_database() AND a.backend_type = 'client backend'
$function$;

-- database_replication: the standbys streaming from this server (pg_stat_replication), their lag in seconds and
-- how far behind their replay is in bytes. The lag columns need pg_read_all_stats, which the owner holds.
CREATE OR REPLACE FUNCTION flowable.database_replication()
 RETURNS TABLE(application_name text, client_addr text, state text, sync_state text, write_lag_seconds double precision, flush_lag_seconds double precision, replay_lag_seconds double precision, replay_behind_bytes numeric, reply_time timestamp with time zone)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog'
AS $function$
    SELECT r.application_name, host(r.client_addr), r.state, r.sync_state,
           EXTRACT(EPOCH FROM r.write_lag)::double precision, EXTRACT(EPOCH FROM r.flush_lag)::double precision,
           EXTRACT(EPOCH FROM r.replay_lag)::double precision,
           CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn) END,
           r.reply_time
      FROM pg_stat_replication r
$function$;
"""

FUNCTIONS_BACKWARD = """
DROP FUNCTION IF EXISTS flowable.database_activity();
DROP FUNCTION IF EXISTS flowable.database_replication();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0029_task_list_keyset_and_queue_figures"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="alert",
            options={
                "ordering": ["-created_at", "-alert_id"],
                "permissions": [("view_database_health", "Can view the database health page")],
            },
        ),
        migrations.RunSQL(FUNCTIONS, reverse_sql=FUNCTIONS_BACKWARD),
    ]
