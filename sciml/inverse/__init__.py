"""Neural inverse operators (home of NIO and the EIT transformer): boundary measurements in, the
coefficient inside out. Their tasks, measurement layouts and solver live here; the networks in
:mod:`sciml.models` (``nio``, ``uit``); the forward models and the classical inversion in
:mod:`sciml.numerics`. Empty until those methods land.
"""
