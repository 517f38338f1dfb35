"""Numba kernels for linkage, importable as ``linkage.kernels``.

Kernels are small ``@njit`` functions over plain numpy arrays and scalars: no I/O, no policy.
Each has a plain numpy reference in :mod:`linkage.kernels.reference` and a hypothesis test.
"""
