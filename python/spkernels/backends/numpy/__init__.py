"""The float64 NumPy reference backend (``numpy``), one module per kernel family.

Slow and always present: the oracle the tests compare every other backend against. Each
``<family>.py`` exposes the same contract as the other backends' modules of that family.
"""
