"""The SLA-risk model's arithmetic (tasks/forecast/model.py): Erlang-C, and a task's breach probability."""

import math

import pytest

from tasks.forecast.model import (
    ActiveTask,
    QueueRates,
    QueueState,
    erlang_c,
    erlang_c_mean_wait,
    forecast_queue,
    task_forecast,
)


@pytest.mark.parametrize(
    ("servers", "load", "expected"),
    [
        (1, 0.5, 0.5),  # M/M/1: P(wait) = rho
        (2, 1.0, 1 / 3),  # textbook: C(2, 1) = 1/3
        (10, 8.0, 0.409),  # call-centre tables: C(10, 8) = 0.409
    ],
)
def test_erlang_c_matches_known_values(servers, load, expected):
    assert erlang_c(servers, load) == pytest.approx(expected, abs=1e-3)


def test_erlang_c_is_certain_wait_when_unstable():
    assert erlang_c(3, 3.0) == 1.0
    assert erlang_c_mean_wait(3, 6.0, 2.0) == math.inf


def test_erlang_c_mean_wait_of_mm1_is_rho_over_mu_minus_lambda():
    assert erlang_c_mean_wait(1, 1.0, 2.0) == pytest.approx(0.5 / (2.0 - 1.0))


def _forecast(*, servers=3, ahead=10, hours_to_due=8.0, busy=3, arrivals_ahead=0.0):
    return task_forecast(
        state=QueueState(service_rates=(1.0,) * servers, busy=busy, service_cv=1.0),
        ahead=ahead,
        arrival_rate_ahead=arrivals_ahead,
        own_service_hours=1.0,
        own_service_cv=1.0,
        hours_to_due=hours_to_due,
    )


def test_exponential_wait_is_the_erlang_distribution_of_the_departures_ahead():
    # n = ahead - free + 1 = 3 departures at rate 3 then one service at rate 1: mean 1 + 1 = 2 hours.
    assert _forecast(ahead=2).expected_hours == pytest.approx(2.0)


def test_more_servers_means_lower_risk():
    risks = [_forecast(servers=c, busy=c).breach_probability for c in (2, 3, 5, 8)]
    assert risks == sorted(risks, reverse=True)
    assert risks[0] > risks[-1]


def test_later_due_date_means_lower_risk():
    risks = [_forecast(hours_to_due=h).breach_probability for h in (2, 4, 8, 16)]
    assert risks == sorted(risks, reverse=True)
    assert risks[0] > risks[-1]


def test_higher_priority_arrivals_raise_the_risk_of_a_task_they_overtake():
    assert _forecast(arrivals_ahead=1.5).breach_probability > _forecast(arrivals_ahead=0.0).breach_probability


def test_a_free_server_takes_the_task_at_once():
    assert _forecast(ahead=0, busy=2).expected_hours == pytest.approx(1.0)


def test_past_due_task_is_certain_to_breach_and_no_due_date_never_breaches():
    assert _forecast(hours_to_due=-1).breach_probability == 1.0
    assert _forecast(hours_to_due=None).breach_probability == 0.0


def test_no_servers_means_the_task_will_breach():
    assert _forecast(servers=0, busy=0).breach_probability == 1.0


def test_forecast_queue_orders_waiting_tasks_by_priority_then_age():
    rates = QueueRates(
        arrivals_by_priority={}, service_hours_by_user={}, service_by_type={}, service_hours=1.0, service_cv=1.0
    )
    tasks = [
        ActiveTask(task_id=1, priority=10, order=(1, 1), task_type="x", hours_to_due=6.0, assignee_id=None),
        ActiveTask(task_id=2, priority=90, order=(2, 2), task_type="x", hours_to_due=6.0, assignee_id=None),
        ActiveTask(task_id=3, priority=10, order=(0, 3), task_type="x", hours_to_due=6.0, assignee_id=7),
    ]
    forecasts = forecast_queue(rates=rates, servers=[7], tasks=tasks)
    # Task 2 (priority 90) is next; task 1 waits for task 3 (in service) and task 2.
    assert forecasts[2].expected_hours < forecasts[1].expected_hours
    assert forecasts[1].breach_probability > forecasts[2].breach_probability
    assert set(forecasts) == {1, 2, 3}


def _with_later_team(*, servers_now, later_rate, hours_left_today=2.0, hours_to_due=30.0):
    return task_forecast(
        state=QueueState(
            service_rates=(1.0,) * servers_now,
            busy=servers_now,
            service_cv=1.0,
            later_total_rate=later_rate,
            hours_left_today=hours_left_today,
        ),
        ahead=20,
        arrival_rate_ahead=0.0,
        own_service_hours=1.0,
        own_service_cv=1.0,
        hours_to_due=hours_to_due,
    )


def test_nobody_on_the_queue_now_still_leaves_tomorrows_usual_team():
    forecast = _with_later_team(servers_now=0, later_rate=4.0)
    # 21 departures at 4 an hour after the 2 hours left today, then its own hour.
    assert forecast.expected_hours == pytest.approx(2.0 + 21 / 4 + 1.0)
    assert forecast.breach_probability < 0.01


def test_a_thinner_usual_team_raises_the_risk_of_a_wait_beyond_today():
    thin = _with_later_team(servers_now=3, later_rate=1.0, hours_to_due=12.0)
    full = _with_later_team(servers_now=3, later_rate=6.0, hours_to_due=12.0)
    assert thin.breach_probability > full.breach_probability


def test_a_wait_that_ends_today_ignores_the_later_team():
    today_only = _with_later_team(servers_now=8, later_rate=0.5, hours_left_today=8.0)
    assert today_only.expected_hours == pytest.approx(21 / 8 + 1.0)
