"""The library's two doors: the command line (``cli``; one error boundary) and
the verbs it shares with the dashboard (``actions``: start a run, steer, export) with the Steer
page's address (``address``).

It may import ``core``, ``code``, ``store``, ``engine``, ``methods``, ``pipeline``, ``reports`` and nothing above.
"""

MAY_IMPORT = ('core', 'code', 'store', 'engine', 'methods', 'pipeline', 'reports')
