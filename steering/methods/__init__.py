"""The steering methods and everything they learn: one registry entry per method
(``registry.METHODS``, a ``Method`` each), the steerers (``steer``), faithful ACT (``act``), the
static neuron (``neurons``), probes, clustering, refinement by gradient, the conditional gate and
projections of the difference vectors.

It may import ``core``, ``code``, ``store``, ``engine`` and nothing above.
"""

MAY_IMPORT = ('core', 'code', 'store', 'engine')
