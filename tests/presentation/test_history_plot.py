"""The history figure: each primary estimate with its interval at each update's date."""

from __future__ import annotations

from datetime import UTC, datetime

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer

from metaanalysis.presentation.history_plot import history_plot, save_history_plot

DATES = [datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)]


def frame() -> pd.DataFrame:
    rows = [
        # the ORR of one class: the primary method switches at the third update
        (DATES[0], "ORR: bispecific", 0.40, 0.30, 0.50, "BAYES-NN", "proportion"),
        (DATES[1], "ORR: bispecific", 0.42, 0.33, 0.51, "BAYES-NN", "proportion"),
        (DATES[2], "ORR: bispecific", 0.45, 0.38, 0.52, "GLMM", "proportion"),
        (DATES[1], "median OS: all", 5.6, 5.2, np.nan, "MM", "months"),  # appears at the second update
        (DATES[2], "median OS: all", 5.9, 5.3, 6.6, "MM", "months"),
    ]
    return pd.DataFrame(rows, columns=["date", "label", "estimate", "ci_lb", "ci_ub", "method", "unit"])


def test_one_panel_per_estimate_with_each_interval_at_its_date():
    fig = history_plot(frame())
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["ORR: bispecific", "median OS: all"]
    orr, os_ = visible
    points = {}
    for container in orr.containers:
        assert isinstance(container, ErrorbarContainer)
        line, _, (bars,) = container
        for x, y, segment in zip(line.get_xdata(), line.get_ydata(), bars.get_segments(), strict=True):
            points[mdates.num2date(mdates.date2num(x)).date()] = (y, segment[0][1], segment[1][1])
    # proportions drawn in percent: estimate, lower and upper end of each bar
    assert points == {
        DATES[0].date(): pytest.approx((40.0, 30.0, 50.0)),
        DATES[1].date(): pytest.approx((42.0, 33.0, 51.0)),
        DATES[2].date(): pytest.approx((45.0, 38.0, 52.0)),
    }
    assert len(orr.containers) == 2  # one series per method: the switch is visible
    assert orr.get_ylabel() == "%" and os_.get_ylabel() == "months"
    (_, _, (bars,)) = os_.containers[0]
    first = bars.get_segments()[0]
    assert first[1][1] == pytest.approx(5.6)  # a missing upper bound draws no bar above, not one to zero
    legend = {t.get_text() for t in fig.legends[0].get_texts()}
    assert legend == {"BAYES-NN", "GLMM", "MM"}


def test_a_frame_without_the_columns_or_the_rows_is_a_clear_error():
    with pytest.raises(ValueError, match="lacks column"):
        history_plot(frame().drop(columns="ci_ub"))
    with pytest.raises(ValueError, match="no rows"):
        history_plot(frame().iloc[:0])


def test_saved_as_png_and_svg_the_same_drawing_twice_gives_the_same_files(tmp_path):
    first = save_history_plot(frame(), tmp_path / "a")
    assert sorted(p.name for p in first) == ["history.png", "history.svg"]
    second = save_history_plot(frame(), tmp_path / "b", reuse_from=tmp_path / "a")
    for a, b in zip(sorted(first), sorted(second), strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert save_history_plot(frame().iloc[:0], tmp_path / "c") == []
