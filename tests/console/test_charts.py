"""The dashboard's server-side SVG charts."""

from datetime import UTC, datetime, timedelta

from tasks.console.charts import FULL_COLOUR, OK_COLOUR, sla_trend_chart, throughput_chart, utilisation_bars


def test_utilisation_bars_escape_queue_labels():
    svg = utilisation_bars([('<script>alert("x")</script>', 5, 10)])

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_utilisation_bars_turn_red_over_ninety_percent():
    svg = utilisation_bars([("full", 95, 100), ("calm", 10, 100)])

    assert FULL_COLOUR in svg and OK_COLOUR in svg
    assert "95/100 (95%)" in svg


def test_throughput_chart_draws_a_bar_per_hour():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    svg = throughput_chart([(start + timedelta(hours=i), i) for i in range(24)])

    assert svg.count("<rect") == 24
    assert svg.startswith("<svg")


def test_sla_trend_leaves_gaps_for_days_without_completions():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    svg = sla_trend_chart(
        [
            (start, 90.0),
            (start + timedelta(days=1), 95.0),
            (start + timedelta(days=2), None),
            (start + timedelta(days=3), 80.0),
        ]
    )

    assert svg.count("<circle") == 3
    assert svg.count("<polyline") == 1


def test_the_backlog_band_chart_shades_the_band_and_draws_the_medians():
    from tasks.console.charts import backlog_band_chart

    band = [(0.0, 1.0, 2.0), (1.0, 3.0, 6.0), (2.0, 4.0, 8.0)]
    svg = backlog_band_chart(band, baseline=[(0, 2, 4)] * 3, day_starts=[0.0, 2.0], title='<b>"q"</b>')

    assert svg.count('class="band"') == 1 and svg.count('class="median"') == 1 and svg.count('class="baseline"') == 1
    assert "day 1" in svg and "day 2" in svg
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    # The band's upper edge reaches the top of the scale (the largest 90th percentile, 8).
    assert ">8<" in svg
