"""The HTML report: one offline file."""

from __future__ import annotations

import re

from steering.reports.report import build_report


def test_report_is_one_offline_html_file(results):
    html = build_report(results)
    assert html.startswith("<!DOCTYPE html>") and html.count("<h2>") >= 5
    assert "plotly.js" in html.lower() or "Plotly.newPlot" in html
    assert not re.search(r"<script[^>]*\bsrc=|<link[^>]*\bhref=", html)  # plotly.js is inline: nothing to fetch
    assert "Side-by-side examples" in html and "#include" in html
