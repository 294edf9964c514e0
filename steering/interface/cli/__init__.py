"""``python -m steering``: the parser and its one error boundary (``main``), the shared flags,
loading and progress (``common``), and the steering-vector files (``vectors``)."""
