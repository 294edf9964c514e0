"""A run from prompts to evaluated steering: the settings, declared once (``settings``),
the stages (``stages``), the runner with its one writer (``runner.Pipeline``), evaluation,
reading a run's results (``results``, ``probe_tables``, ``eval_tables``), fitted artifacts (``artifacts``) and the
exchange formats (``vectors_io``, llama.cpp's ``control_vectors``).

It may import ``core``, ``code``, ``store``, ``engine``, ``methods`` and nothing above.
"""

MAY_IMPORT = ('core', 'code', 'store', 'engine', 'methods')
