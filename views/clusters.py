"""Clusters: the difference vectors projected layer by layer, and how the steering vectors relate."""

import streamlit as st

from views.common import PLOT_CONFIG, fragment, projection, require_run
from steering.methods.projection import PROJECTIONS
from steering.reports import figures

METHOD_LABELS = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
COLOR_LABELS = {"cluster": "cluster", "category": "task category", "probe": "probe correctness"}


@fragment
def projection_view(results):
    """Its own fragment: moving the layer slider redraws this plot only, not the whole page."""
    c1, c2, c3, c4 = st.columns([2, 1, 2, 3])
    method = c1.radio("Projection", PROJECTIONS, format_func=METHOD_LABELS.get, horizontal=True)
    dims = c2.radio("Dimensions", [2, 3], format_func=lambda d: f"{d}-D", horizontal=True)
    color_by = c3.radio("Colour by", list(COLOR_LABELS), format_func=COLOR_LABELS.get, horizontal=True)
    layer = c4.slider("Layer", 0, results.n_layers - 1, results.n_layers // 2)
    with st.spinner(f"Computing the {METHOD_LABELS[method]} projection of every layer (once per run)…"):
        points = projection(results, method, dims)
    table = results.projection_table(points, layer)
    st.plotly_chart(figures.projection_scatter(table, color_by, method, layer), config=PLOT_CONFIG, key="projection")


st.title("Clusters")
results = require_run("cluster")
projection_view(results)
left, right = st.columns(2)
left.plotly_chart(figures.silhouette_line(results.silhouette()), config=PLOT_CONFIG)
right.plotly_chart(figures.cosine_heatmap(results.vector_cosines()), config=PLOT_CONFIG)
