"""Steerscope's engine: load a code model, read its activations, and steer the language it writes.

Everything the dashboard shows is computed here, so it can be used from Python and from
``python -m steering`` without Streamlit.
"""

__version__ = "0.1.0"
