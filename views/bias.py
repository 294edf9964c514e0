"""Bias: which language the model writes when the prompt names none."""

import streamlit as st

from views.common import PLOT_CONFIG, require_run
from steering.reports import figures

st.title("Bias")
results = require_run("bias")
shares = results.bias_shares()
n = len(results.generations("bias"))
favourite = shares.drop("none").idxmax()
st.caption(f"{n} answers sampled at temperature {results.pipeline.get('bias_temperature', 1.0)} "
           f"({results.pipeline.get('bias_samples', '?')} per neutral prompt). The model prefers "
           f"**{figures.language_name(favourite)}** ({shares[favourite]:.0%}); the target, "
           f"{figures.language_name(results.target)}, gets {shares.get(results.target, 0):.0%}.")
cols = st.columns(len(shares))
for col, (key, value) in zip(cols, shares.items()):
    col.metric(figures.language_name(key), f"{value:.0%}")
st.plotly_chart(figures.language_shares_bar(shares), config=PLOT_CONFIG)
st.plotly_chart(figures.bias_heatmap(results.bias_matrix()), config=PLOT_CONFIG)
with st.expander("The sampled answers"):
    answers = results.generations("bias")[["task_id", "seed", "language", "confidence", "parses", "n_tokens", "text"]]
    st.dataframe(answers, hide_index=True)
