"""Benchmark cases, one module per kernel family; each calls ``spkernels.bench.registry.register``.

Every module here is imported by ``spkernels.bench.registry.cases()``, so a family adds its file
and nothing else. ``copy.py`` is the built-in case: the copy-bandwidth ceiling itself.
"""
