"""bench/forecast.py: the staffing what-if, run on a past period of the default generated history with the staffing
and the arrivals it had, reproduces that period's SLA compliance and median wait (the benchmark's target)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_forecast_whatif", BENCH_DIR / "forecast.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_the_what_if_reproduces_the_default_historys_compliance_and_median_wait(bench):
    from tasks.forecast.history import generate

    figures = bench.whatif_backtest(generate(weeks=12, seed=1))

    assert abs(figures["compliance_pp"]) <= bench.WHATIF_MAX_COMPLIANCE_PP
    assert abs(figures["wait_error"]) <= bench.WHATIF_MAX_WAIT_ERROR
    simulated, observed = figures["arrivals"]
    assert simulated == observed  # the period's own arrivals, replayed
    assert figures["ok"]


def test_the_what_if_with_fitted_arrivals_draws_as_many_tasks_as_the_period_had(bench):
    from tasks.forecast.history import generate

    figures = bench.whatif_backtest(generate(weeks=12, seed=1), arrivals="fitted", replications=10)

    simulated, observed = figures["arrivals"]
    assert simulated == pytest.approx(observed, rel=0.05)
    assert abs(figures["compliance_pp"]) <= bench.WHATIF_MAX_COMPLIANCE_PP
