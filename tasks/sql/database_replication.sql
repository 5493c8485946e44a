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
