"""bench/forecast.py: the backtest's scoring (recall, precision, Brier) and the target on the default history."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def backtest():
    spec = importlib.util.spec_from_file_location("bench_forecast", BENCH_DIR / "forecast.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_forecast", None)


def test_scoring_counts_early_flags_only(backtest):
    from tasks.forecast.history import TASK_TYPES, History, SimTask

    kind = TASK_TYPES[0]
    late = SimTask(task_id=1, task_type=kind, created=100.0, due=110.0, claimed=111.0, completed=112.0)
    on_time = SimTask(task_id=2, task_type=kind, created=100.0, due=110.0, claimed=101.0, completed=102.0)
    flagged_too_late = SimTask(task_id=3, task_type=kind, created=100.0, due=110.0, claimed=111.0, completed=113.0)
    history = History(weeks=4, seed=0, tasks=[late, on_time, flagged_too_late], caseworkers=[1], speed={1: 1.0})
    forecasts = {
        1: [(100.0, 0.2), (105.0, 0.9)],  # flagged 5 hours before due: counts
        2: [(100.0, 0.7)],  # flagged, then on time: a false alarm
        3: [(100.0, 0.1), (108.0, 0.95)],  # flagged 2 hours before due: too late to count
    }

    figures = backtest.score(history, forecasts, end=160.0, threshold=0.5)

    assert (figures["breached"], figures["flagged"]) == (2, 2)
    assert figures["recall"] == 0.5 and figures["precision"] == 0.5
    expected = ((0.2 - 1) ** 2 + (0.9 - 1) ** 2 + 0.7**2 + (0.1 - 1) ** 2 + (0.95 - 1) ** 2) / 5
    assert figures["brier"] == pytest.approx(expected)


def test_the_default_history_meets_the_target(backtest):
    history = backtest.generate(weeks=12, seed=1)
    forecasts, end = backtest.replay(history)

    figures = backtest.score(history, forecasts, end, backtest.DEFAULT_THRESHOLD)

    assert figures["breached"] > 20
    assert figures["recall"] >= backtest.TARGET_RECALL
    assert figures["precision"] >= backtest.TARGET_PRECISION
