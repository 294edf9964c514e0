"""The figures every interface draws: titles, integer layer axes, one colour per language."""

from __future__ import annotations

from steering.code.languages import LANGUAGES
from steering.reports import figures


def test_figures_have_titles_integer_layer_axes_and_language_colours(results):
    table = results.projection_table(results.projection("pca", 2), 4)
    drawn = [
        figures.language_shares_bar(results.bias_shares()), figures.bias_heatmap(results.bias_matrix()),
        figures.probe_accuracy_lines(results.probe_accuracy()), figures.class_accuracy_heatmap(results.class_accuracy()),
        figures.confusion_heatmap(results.confusion(4), 4), figures.task_confidence_lines(results.task_confidence(results.prompts.ids[0]), "t"),
        figures.projection_scatter(table, "category", "pca", 4), figures.cosine_heatmap(results.vector_cosines()),
        figures.silhouette_line(results.silhouette()), figures.sweep_grid(results.sweep(), results.chosen),
        figures.shares_before_after(results.eval_shares()),
    ]
    for fig in drawn:
        layout = fig.layout
        assert layout.title.text and layout.xaxis.title.text and layout.yaxis.title.text
        for axis in (layout.xaxis, layout.yaxis):
            if axis.title.text == "layer":
                assert axis.dtick == 1 and axis.tickformat == "d"
                assert axis.range is None or (-0.5 <= axis.range[0] and axis.range[1] <= results.n_layers - 0.5)
    bar = figures.language_shares_bar(results.bias_shares())
    assert list(bar.data[0].marker.color)[:4] == [LANGUAGES[k].color for k in LANGUAGES]
    stacked = figures.shares_before_after(results.eval_shares())
    assert {t.name: t.marker.color for t in stacked.data}["C++"] == LANGUAGES["cpp"].color
