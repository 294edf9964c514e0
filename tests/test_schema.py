"""The one vocabulary: each measure has one name and one definition, shown with its tables."""

from __future__ import annotations

import html

from steering.reports.report import build_report


def test_every_measure_has_one_definition_shown_with_its_tables(results):
    from steering.store.schema import EVAL_MEASURES, MEASURE_DEFINITIONS, measure_help

    assert set(EVAL_MEASURES) <= set(MEASURE_DEFINITIONS)
    for key, label in EVAL_MEASURES.items():
        assert measure_help(label) == MEASURE_DEFINITIONS[key] and MEASURE_DEFINITIONS[key].startswith(label)
    assert html.escape(MEASURE_DEFINITIONS["cut_off"]) in build_report(results)
