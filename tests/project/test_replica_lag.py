"""How far behind the read replica is, and when it may serve lag-tolerant reads (core/replica.py). The real standby
is in test_read_replica.py; here the rule itself, on the figures PostgreSQL reports."""

from core.replica import replica_lag, replica_problem

MAX_LAG = 5.0


def test_a_replica_that_replayed_all_the_primary_wrote_is_not_behind_however_idle_the_primary():
    # The last transaction it replayed committed an hour ago: nothing has committed since.
    assert replica_lag(primary_position=1000, replayed_position=1000, since_last_replay=3600.0) == 0.0


def test_a_replica_short_of_the_primarys_position_is_behind_by_the_age_of_its_last_replayed_commit():
    assert replica_lag(primary_position=2000, replayed_position=1000, since_last_replay=7.5) == 7.5


def test_the_lag_is_unknown_without_a_replay_position_or_a_replayed_commit():
    assert replica_lag(primary_position=2000, replayed_position=None, since_last_replay=None) is None
    assert replica_lag(primary_position=2000, replayed_position=1000, since_last_replay=None) is None


def test_a_replica_within_the_bound_serves_reads():
    assert replica_problem(in_recovery=True, lag_seconds=MAX_LAG, max_lag_seconds=MAX_LAG) == ""


def test_a_replica_past_the_bound_does_not():
    assert "more than DATABASE_REPLICA_MAX_LAG_SECONDS" in replica_problem(
        in_recovery=True, lag_seconds=MAX_LAG + 0.1, max_lag_seconds=MAX_LAG
    )


def test_a_server_that_is_not_a_standby_does_not_follow_the_primary_and_serves_no_reads():
    assert "not a standby" in replica_problem(in_recovery=False, lag_seconds=0.0, max_lag_seconds=MAX_LAG)


def test_a_replica_of_unknown_lag_serves_no_reads():
    assert "lag unknown" in replica_problem(in_recovery=True, lag_seconds=None, max_lag_seconds=MAX_LAG)
