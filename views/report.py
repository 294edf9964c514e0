"""Report: one self-contained HTML file for people without the dashboard, and the raw results."""

import streamlit as st

from views.common import own_run_state, require_run
from steering.methods.registry import DEFAULT_METHOD, METHODS
from steering.reports.report import build_report

own_run_state("report")  # the report of the open run; reset when another run is opened
st.title("Report")
results = require_run()
name = results.run.dir.name
methods = results.evaluated_methods() or results.evaluated_methods("heldout") or [DEFAULT_METHOD]
c1, c2 = st.columns(2)
method = c1.selectbox("Examples from the evaluation of", methods, format_func=lambda m: METHODS[m].label)
layer = c2.slider("Projection layer", 0, max(results.n_layers - 1, 0), results.n_layers // 2)
if st.button("Build the HTML report", type="primary"):
    with st.spinner("Building the report (plotly.js is embedded, so it opens offline)…"):
        st.session_state.report = {"run": str(results.run.dir), "html": build_report(results, method=method, layer=layer)}
report = st.session_state.get("report")
if report and report["run"] == str(results.run.dir):  # only this run's report, under this run's name
    html = report["html"]
    st.success(f"Report of run `{name}` ready: {len(html) / 1e6:.1f} MB, viewable without a network.")
    st.download_button("Download report.html", html, file_name=f"steerscope-{name}.html", mime="text/html")

st.subheader("Raw results")
cols = st.columns(3)
cols[0].download_button("Metrics (CSV)", results.metrics_csv(), file_name=f"{name}-metrics.csv", mime="text/csv")
cols[1].download_button("Generations (JSONL)", results.generations_jsonl(), file_name=f"{name}-generations.jsonl",
                        mime="application/jsonl")
if results.has("cluster"):
    cols[2].download_button("Steering vectors (safetensors)", results.vectors_safetensors(),
                            file_name=f"{name}-vectors.safetensors", mime="application/octet-stream",
                            help="Check it against a model with `python -m steering import-vectors FILE --model ...`.")
else:
    cols[2].caption("Steering vectors appear after the extract and cluster stages.")
