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
