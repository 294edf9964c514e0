"""Plumbing that knows nothing of models: the error wording (``errors``), the one function
through which every file is written (``files``), the bound of every count and size a user can give
(``limits``), progress with elapsed time, thread counts, statistics, and the steering schedules
with their per-step control (``schedules``, read by generation and by the methods).

It imports no other part of the library.
"""

MAY_IMPORT = ()
