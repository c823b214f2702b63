"""dashboard.charts: accessible SVG, honest scales, text escaped."""

import re
from typing import Any

import pytest

from dashboard import charts
from dashboard.charts import Series


def test_ticks_are_round_and_cover_the_values_and_zero():
    assert charts.nice_ticks(0, 9) == [0, 5, 10]
    assert charts.nice_ticks(3, 47) == [0, 20, 40, 60]
    assert charts.nice_ticks(-3, 4) == [-4, -2, 0, 2, 4]
    # 0.4 would leave the top value off the scale.
    assert charts.nice_ticks(0, 0.5) == [0, 0.2, 0.4, 0.6]
    assert charts.nice_ticks(0, 0.3) == [0, 0.1, 0.2, 0.3]


def test_all_zero_values_still_have_a_scale():
    assert charts.nice_ticks(0, 0) == [0, 0.5, 1]


def _bar(**kwargs):
    options: dict[str, Any] = {
        "title": "Trials",
        "description": "Trials per day.",
        "labels": ["Mon", "Tue"],
        "series": [Series("Trials", [1, 3])],
        "x_label": "Day",
        "y_label": "Trials started",
    }
    options.update(kwargs)
    return charts.bar_chart("trials", **options)


def test_a_bar_chart_is_an_image_named_by_its_title_and_description():
    svg = _bar()
    assert svg.startswith('<svg class="chart" id="trials" role="img"')
    assert 'aria-labelledby="trials-title trials-desc"' in svg
    assert '<title id="trials-title">Trials</title>' in svg
    assert '<desc id="trials-desc">Trials per day.</desc>' in svg
    assert ">Day</text>" in svg
    assert ">Trials started</text>" in svg
    # No inline style anywhere: the site's CSP forbids it.
    assert "style=" not in svg
    assert "<script" not in svg


def test_each_bar_is_as_tall_as_its_value_and_says_it():
    svg = _bar()
    heights = [
        float(h)
        for h in re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"', svg)
    ]
    # Ticks 0..3 over the plot's height: 3 is the full height, 1 a third of it.
    plot_height = charts.HEIGHT - charts.TOP - charts.BOTTOM
    assert heights == [pytest.approx(plot_height / 3, abs=0.1), pytest.approx(plot_height, abs=0.1)]
    assert "<title>Tue, Trials: 3</title>" in svg


def test_negative_bars_hang_below_the_zero_line():
    svg = _bar(series=[Series("Net", [2, -2])])
    rects = re.findall(r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"', svg)
    (up_y, up_h), (down_y, down_h) = [(float(y), float(h)) for y, h in rects]
    assert up_y + up_h == pytest.approx(down_y)  # both start at the zero line
    assert up_h == pytest.approx(down_h)


def test_several_series_get_a_legend_and_one_class_each():
    svg = _bar(series=[Series("Started", [1, 2]), Series("Stopped", [0, 1])])
    assert '<g class="chart-legend">' in svg
    assert '<g class="series-0">' in svg and '<g class="series-1">' in svg
    assert ">Stopped</text>" in svg


def test_text_is_escaped():
    svg = _bar(title="<script>alert(1)</script>", labels=['"><b>', "Tue"])
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "&quot;&gt;&lt;b&gt;" in svg


def test_a_series_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="2 labels"):
        _bar(series=[Series("Trials", [1])])


def test_a_line_chart_marks_each_point_in_order():
    svg = charts.line_chart(
        "mrr",
        title="MRR",
        description="MRR per month.",
        labels=["Oct", "Nov", "Dec"],
        series=[Series("MRR", [0, 50, 100])],
        x_label="Month",
        y_label="MRR ($)",
        fmt=charts.plain_number,
    )
    assert svg.count("<circle") == 3
    match = re.search(r'points="([^"]+)"', svg)
    assert match is not None
    points = match.group(1).split()
    ys = [float(point.split(",")[1]) for point in points]
    assert ys[0] > ys[1] > ys[2]  # higher values are drawn higher up
    assert "<title>Dec, MRR: 100</title>" in svg


def test_percent_and_number_formats():
    assert charts.percent(0.5) == "50%"
    assert charts.plain_number(1234) == "1,234"
    assert charts.plain_number(0.25) == "0.25"
