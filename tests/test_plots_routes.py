"""plots.plot_routes: every route of the table gets its own series, no point is hidden under another, and
the legend lies outside the axes."""

import matplotlib

matplotlib.use("agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from peel_utils import plots  # noqa: E402


def routes_table() -> pd.DataFrame:
    """Notebook 05's shape: four structured routes at 2x and 3x, the dense model timed twice (nearly the same
    point), notebook 03's unstructured model on top of them, notebook 04's ResNet18."""
    rows = [("dense ResNet50", 1.00, 98.4, ""), ("dense ResNet50, timed again", 0.97, 98.4, ""),
            ("03: unstructured ResNet50", 0.98, 98.4, ""), ("04: distilled ResNet18", 2.76, 97.3, "")]
    for name, points in {"L2 + KD": ((1.31, 97.4), (1.69, 96.9)), "CPD + KD": ((1.29, 97.6), (1.56, 96.9)),
                         "random + KD": ((1.35, 97.0), (1.69, 97.6)), "CPD, no KD": ((1.31, 95.9), (1.52, 96.2))}.items():
        rows += [(name, sx, acc, f"{target}x") for (sx, acc), target in zip(points, (2, 3))]
    return pd.DataFrame(rows, columns=["model", "speedup", "accuracy", "note"])


def series_labels(ax) -> list[str]:
    return [a.get_label() for a in [*ax.lines, *ax.collections] if not a.get_label().startswith("_")]


@pytest.fixture
def figure():
    fig = plots.plot_routes(routes_table(), "speedup", "accuracy", route="model", note="note",
                             references={"dense + KD, 2x budget": 98.9, "dense + KD, 3x budget": 97.8},
                             xlabel="speed-up at batch 64 (×)", ylabel="test accuracy (%)")
    yield fig
    plt.close(fig)


def test_each_route_has_its_own_series_and_each_reference_its_line(figure):
    ax = figure.axes[0]
    labels = series_labels(ax)
    for name in routes_table().model.unique():
        assert labels.count(name) == 1, name
    assert labels.count("dense + KD, 2x budget") == 1 and labels.count("dense + KD, 3x budget") == 1
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert set(routes_table().model) <= set(legend)


def test_each_series_holds_its_routes_points(figure):
    ax = figure.axes[0]
    table = routes_table()
    for collection in ax.collections:
        rows = table[table.model == collection.get_label()]
        assert sorted(map(tuple, collection.get_offsets().tolist())) == sorted(zip(rows.speedup, rows.accuracy))


def test_routes_have_distinct_markers_or_colours(figure):
    ax = figure.axes[0]
    styles = [(tuple(c.get_edgecolor()[0]), c.get_paths()[0].vertices.tobytes()) for c in ax.collections]
    assert len(set(styles)) == len(styles)


def test_a_point_near_an_earlier_one_is_drawn_hollow_and_larger(figure):
    ax = figure.axes[0]
    by_label = {c.get_label(): c for c in ax.collections}
    first, again, unstructured = (by_label[n] for n in ("dense ResNet50", "dense ResNet50, timed again",
                                                      "03: unstructured ResNet50"))
    assert first.get_facecolor()[0][3] > 0  # the first point drawn is filled
    for ring in (again, unstructured):
        assert ring.get_facecolor().size == 0 or ring.get_facecolor()[0][3] == 0  # hollow
    assert first.get_sizes()[0] < again.get_sizes()[0] < unstructured.get_sizes()[0]  # each ring outside the last
    assert by_label["04: distilled ResNet18"].get_facecolor()[0][3] > 0  # alone: filled


def test_the_legend_lies_outside_the_axes(figure):
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    ax = figure.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    axes = ax.get_window_extent(renderer)
    assert legend.x0 >= axes.x1 or legend.x1 <= axes.x0 or legend.y0 >= axes.y1 or legend.y1 <= axes.y0
    assert legend.x1 <= figure.bbox.x1 + 1  # and inside the figure, so it is not cut off


def test_axis_labels_are_set(figure):
    ax = figure.axes[0]
    assert ax.get_xlabel() == "speed-up at batch 64 (×)" and ax.get_ylabel() == "test accuracy (%)"
