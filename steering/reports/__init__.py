"""What is read from finished runs: the comparison of models layer by layer
(``compare``), the plain-text summary, the figures every interface draws (``figures``) and the
self-contained HTML report.

It may import ``core``, ``code``, ``store``, ``engine``, ``methods``, ``pipeline`` and nothing above.
"""

MAY_IMPORT = ('core', 'code', 'store', 'engine', 'methods', 'pipeline')
