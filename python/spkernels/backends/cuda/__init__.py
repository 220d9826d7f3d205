"""The CUDA C++ backend (``cuda``): thin adapters over the ``*_cuda`` launchers of ``spkernels._core``.

Inputs are device arrays (CuPy, or :class:`spkernels._arrays.DeviceArray` without CuPy); the
adapters pass their pointers (``spkernels._arrays.device_pointer``) and never copy to the host.
Each ``<family>.py`` exposes the same contract as the other backends' modules of that family.
"""
