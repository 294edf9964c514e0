"""The embedded demo model: a small Llama-architecture code model trained from nothing on a
corpus with a deliberate, documented language bias, so that steering has something to overcome.

``python -m steering.demo_model train`` rebuilds it; ``python -m steering.demo_model eval``
measures its language bias and its explicit-language accuracy.

It may import ``core``, ``code``, ``store``, ``engine``, ``methods`` and ``pipeline``.
"""

MAY_IMPORT = ('core', 'code', 'store', 'engine', 'methods', 'pipeline')
