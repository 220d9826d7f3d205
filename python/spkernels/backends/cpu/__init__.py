"""The C++ OpenMP backend (``cpu``): thin adapters over ``spkernels._core``, one module per family.

Each ``<family>.py`` turns validated NumPy arrays into the calls of the compiled ``*_cpu``
functions and exposes the same contract as the other backends' modules of that family.
"""
