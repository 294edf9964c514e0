"""Steerscope's home page: load a model and meet it. ``streamlit run app.py``"""

from __future__ import annotations

import streamlit as st

from steering.models import EMBEDDED_MODEL_NAME, ModelLoadError, load_model, model_card

st.set_page_config(page_title="Steerscope", page_icon="🧭", layout="wide")


@st.cache_resource(show_spinner="Loading the model…")
def shared_model(name: str | None):
    """One loaded model per process, shared by every browser session."""
    return load_model(name)


st.title("Steerscope")
st.caption("See which layers of a code model decide the programming language, and steer it.")

with st.sidebar:
    st.header("Model")
    requested = st.text_input(
        "Hugging Face id or local directory",
        value="",
        placeholder=f"blank: the embedded {EMBEDDED_MODEL_NAME}",
        help="Any causal LM with safetensors weights that TransformerLens can bridge.",
    ).strip()

try:
    model = shared_model(requested or None)
except ModelLoadError as err:
    st.error(f"Could not load the model: {err}")
    st.stop()

facts = model.facts
st.success(
    f"Hello! **{facts.name}** is loaded on {facts.device}: a {facts.architecture} with "
    f"{facts.n_layers} layers and {facts.n_params / 1e6:.1f}M parameters."
)
cols = st.columns(6)
for col, (label, value) in zip(
    cols,
    [
        ("Layers", facts.n_layers),
        ("d_model", facts.d_model),
        ("Heads", facts.n_heads),
        ("Parameters", f"{facts.n_params / 1e6:.2f}M"),
        ("Hook points", facts.n_hook_points),
        ("dtype", facts.dtype),
    ],
):
    col.metric(label, value)

with st.expander("All model facts"):
    st.json(facts.as_dict())
if facts.source == "embedded":
    card = model_card()
    if card:
        st.caption(
            f"The embedded model was trained by `python -m steering.demo_model train` in "
            f"{card['train_seconds'] / 60:.1f} min on {card['threads']} CPU threads; "
            "its corpus prefers Python, then Java, Julia and C++ when no language is named."
        )
with st.sidebar:
    st.caption(f"**Loaded:** {facts.name} · {facts.n_layers} layers · {facts.device}")
