"""bench/claim.py's schedule: every method measured between two measurements of the plain statement, its ratio
taken against both, so a machine whose speed drifts during a round does not move the ratio."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def claim_bench():
    sys.path.insert(0, str(BENCH_DIR))  # the script imports its neighbour `common` as a top-level module
    try:
        spec = importlib.util.spec_from_file_location("bench_claim", BENCH_DIR / "claim.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up while being built
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_claim", None)
        sys.path.remove(str(BENCH_DIR))


METHODS = ["sql", "function", "service", "http"]


def test_every_method_is_measured_once_a_round_between_two_baseline_measurements(claim_bench):
    for round_ in range(6):
        sequence = claim_bench.round_sequence(METHODS, round_)
        assert sequence[::2] == ["sql"] * 4
        assert sorted(sequence[1::2]) == sorted(["function", "service", "http"])


def test_the_order_of_the_other_methods_rotates_so_none_is_always_first(claim_bench):
    firsts = {claim_bench.round_sequence(METHODS, round_)[1] for round_ in range(3)}
    lasts = {claim_bench.round_sequence(METHODS, round_)[-2] for round_ in range(3)}
    assert firsts == lasts == {"function", "service", "http"}


def test_without_the_baseline_the_methods_just_rotate(claim_bench):
    assert claim_bench.round_sequence(["service", "http"], 0) == ["service", "http"]
    assert claim_bench.round_sequence(["service", "http"], 1) == ["http", "service"]
    assert claim_bench.round_sequence(["sql"], 2) == ["sql"]


def test_a_machine_speeding_up_during_the_round_does_not_move_the_ratio(claim_bench):
    # The code's true ratios are 0.75, 0.6 and 0.3; the machine gets 10 % faster with every measurement.
    true_ratio = {"sql": 1.0, "function": 0.75, "service": 0.6, "http": 0.3}
    sequence = claim_bench.round_sequence(METHODS, 0)
    measured = [(method, 3000 * true_ratio[method] * 1.1**i) for i, method in enumerate(sequence)]

    ratios = claim_bench.bracketed_ratios(measured)

    assert ratios == pytest.approx(true_ratio)
    # Against the first baseline measurement alone the drift would have read as a faster service.
    first_sql = measured[0][1]
    service_rate = dict(measured)["service"]
    assert service_rate / first_sql > true_ratio["service"] * 1.2


def test_a_method_without_a_baseline_on_both_sides_gets_no_ratio(claim_bench):
    assert claim_bench.bracketed_ratios([("service", 2000.0), ("http", 700.0)]) == {}
    assert claim_bench.bracketed_ratios([("sql", 3000.0), ("service", 2000.0)]) == {"sql": 1.0}
    ratios = claim_bench.bracketed_ratios([("sql", 3000.0), ("service", 2000.0), ("sql", 0.0)])
    assert "service" not in ratios and not any(math.isnan(r) for r in ratios.values())


def test_backlogs_are_compared_measurement_by_measurement(claim_bench):
    small = [("sql", 3000.0), ("service", 2000.0), ("sql", 2800.0), ("http", 0.0)]
    large = [("sql", 3300.0), ("service", 1900.0), ("sql", 2800.0), ("http", 500.0)]

    pairs = claim_bench.backlog_ratios_of(small, large)

    assert pairs == [("sql", pytest.approx(1.1)), ("service", pytest.approx(0.95)), ("sql", 1.0)]


@pytest.mark.parametrize("compare", ["1000", "0"])
def test_a_backlog_comparison_needs_a_second_size(claim_bench, compare):
    # Both backlogs are keyed by their size: comparing a backlog with itself would mix their measurements.
    with pytest.raises(SystemExit) as refused:
        claim_bench.parse_args(["--tasks", "1000", "--compare-backlog", compare])
    assert refused.value.code == 2
    assert claim_bench.parse_args(["--tasks", "1000", "--compare-backlog", "100"]).compare_backlog == 100


def test_the_ceiling_ratio_is_taken_against_the_baseline_beside_each_measurement(claim_bench):
    # True rates relative to sql: ceiling 3.0, function 1.2 (so function/ceiling = 0.4); the machine gets 10 %
    # faster with every measurement.
    true_ratio = {"sql": 1.0, "ceiling": 3.0, "function": 1.2, "service": 0.6}
    sequence = claim_bench.round_sequence(["sql", "ceiling", "function", "service"], 0)
    measured = [(method, 1000 * true_ratio[method] * 1.1**i) for i, method in enumerate(sequence)]

    ratios = claim_bench.ceiling_ratios(measured)

    assert ratios["function"] == pytest.approx(0.4)
    assert ratios["ceiling"] == pytest.approx(1.0)
    assert ratios["service"] == pytest.approx(0.2)


def test_without_a_ceiling_there_is_no_ceiling_ratio(claim_bench):
    assert claim_bench.ceiling_ratios([("sql", 3000.0), ("function", 2000.0), ("sql", 3000.0)]) == {}
    assert claim_bench.ceiling_ratios([("sql", 3000.0), ("ceiling", 0.0), ("sql", 3000.0)]) == {}
    # Without the baseline in the run, the plain rates.
    assert claim_bench.ceiling_ratios([("ceiling", 4000.0), ("function", 1000.0)]) == {"ceiling": 1.0, "function": 0.25}
