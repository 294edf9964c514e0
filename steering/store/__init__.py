"""The run store: the names of a run's files, tensors and metrics, declared once (``schema``),
a run on disk with its lock, records and tensors (``storage``), and model fingerprints.

It may import ``core``, ``code`` and nothing above.
"""

MAY_IMPORT = ('core', 'code')
