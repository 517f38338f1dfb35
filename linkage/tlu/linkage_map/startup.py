"""Numba's start-up beside a map update (issue 14: an update's fixed costs).

Importing numba (about 0.2 s), a process's first call of any compiled kernel (numba's typing
and lowering registries, about 0.2 s of CPU, whatever the kernel) and each kernel's first
call (its machine code, loaded from numba's on-disk cache) all happen in one thread, that
:func:`numba_started_beside` runs while the update opens the map and queries it (DuckDB and
Arrow release the GIL), so on a free core they cost little wall time. For that, nothing the
update imports at module level imports numba or a kernel (``linkage.tlu.blocking``,
``.solver``, ``.linker``, ``.engines`` and this package import them where they call them;
``test_update_imports_no_numba`` checks it); :func:`gc_paused` keeps the cyclic garbage
collector from walking numba's objects meanwhile. See docs/linkage-map.md ("Performance").
"""

from __future__ import annotations

import contextlib
import gc
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np


class _NoScipyLinalgHere(importlib.abc.MetaPathFinder):
    """Refuses ``scipy.linalg`` to one thread (the others import it as usual)."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "scipy.linalg" and threading.get_ident() == self.thread:
            raise ModuleNotFoundError("deferred by linkage's map update", name=name)
        return None


def _blas_installed() -> bool:
    """Whether ``scipy.linalg.cython_blas`` is there to import, found without importing
    ``scipy.linalg`` (SciPy itself is imported by numba)."""
    try:
        linalg = importlib.util.find_spec("scipy.linalg")
        where = linalg.submodule_search_locations if linalg is not None else None
        return where is not None and (
            importlib.machinery.PathFinder.find_spec("cython_blas", list(where)) is not None
        )
    except (ImportError, ValueError):
        return False


@contextlib.contextmanager
def _blas_check_deferred() -> Iterator[None]:
    """numba's registries, loaded by a process's first kernel call, check that SciPy's BLAS
    is there by importing ``scipy.linalg`` (about 0.2 s of CPU, most of it SciPy's array-API
    layer cloning all of NumPy, f2py included), whatever the kernel; no kernel of an update
    uses BLAS. In the block, this thread's import of ``scipy.linalg`` fails (so the check
    answers "no BLAS" at once); after it, numba's answer is set to what the import would
    have given (the module's file is there), so a kernel compiled later that uses BLAS
    compiles as in any process (numba imports SciPy's BLAS itself then). Nothing is done
    when the registries are loaded already or ``scipy.linalg`` is imported (nothing to
    save)."""
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        yield
        return
    finder = _NoScipyLinalgHere()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        arraymath = sys.modules.get("numba.np.arraymath")
        if arraymath is not None and getattr(arraymath, "_HAVE_BLAS", True) is False:
            arraymath._HAVE_BLAS = _blas_installed()  # type: ignore[attr-defined]


def update_kernel_signatures() -> list[tuple[Any, tuple[Any, ...]]]:
    """The compiled kernels an update calls, with the argument types it calls them with
    (numba types), in the order it first calls them: the block-key strategy (``keys``, what
    ``auto`` picks at scale) on more than one numba thread. A kernel of another path is
    loaded at its first call as usual. ``test_update_start_up_loads_the_kernels_the_update_
    calls`` (tests/test_linkage_map_filters.py) checks this list against a real update's."""
    from numba import types as nt

    from linkage.kernels import blocking as kb
    from linkage.kernels import cluster as kc
    from linkage.kernels import dice_stored as kd
    from linkage.kernels import siphash as ks

    def arr(dtype: Any, ndim: int = 1, readonly: bool = False) -> Any:
        return nt.Array(dtype, ndim, "C", readonly=readonly)

    i64, u64, i32, f64 = arr(nt.int64), arr(nt.uint64), arr(nt.int32), arr(nt.float64)
    filters = arr(nt.uint64, 2)
    return [
        (kb.group_bounds, (u64,)),
        (
            kb.score_groups_parallel,
            (i64, i64, i64, i64, i32, filters, i32, nt.boolean, i64, i64, f64),
        ),
        (kd.dice_stored_parallel, (filters, i32, arr(nt.uint64, 2, readonly=True), i64, i64)),
        (kc.connected_components, (i64, i64, arr(nt.boolean), nt.int64)),
        (kc.sort_score_ties, (i64, f64, u64)),
        (kc.greedy_cluster, (i64, i64, i64, i64, nt.boolean)),
        (ks.siphash_batch, (nt.uint64, nt.uint64, arr(nt.uint8), i64, u64)),
    ]


def _load_cached(kernel: Any, argtypes: tuple[Any, ...]) -> bool:
    """Load ``kernel``'s machine code for ``argtypes`` from numba's on-disk cache, if it is
    there (never compiles: a compile here would hold numba's compiler lock while the update
    waits for another kernel). True when loaded or already loaded."""
    from numba.core.compiler_lock import global_compiler_lock

    sig = tuple(argtypes)
    with global_compiler_lock:  # as numba's own compile holds it
        if sig in kernel.overloads:
            return True
        cache = getattr(kernel, "_cache", None)
        cres = None if cache is None else cache.load_overload(sig, kernel.targetctx)
        if cres is None:
            return False
        kernel.add_overload(cres)
        return True


def _start_numba() -> None:
    """Import numba and the update's kernel modules, then call one cached kernel: a
    process's first numba call costs numba's own start-up (its typing and lowering
    registries, SciPy's BLAS check: deferred, :func:`_blas_check_deferred`), whatever the
    kernel. Then load, from numba's cache, the machine code of the other kernels the update
    will call (about 0.01 s each, in this thread rather than at each first call). With
    ``NUMBA_DISABLE_JIT=1`` only the imports. Errors are left to the update's own calls
    (which import what failed here again, and raise)."""
    with contextlib.suppress(Exception), _blas_check_deferred():
        import numba

        from linkage.kernels.popcount import popcount_rows

        signatures = update_kernel_signatures()  # imports the kernel modules
        if getattr(numba.config, "DISABLE_JIT", 0):
            return
        popcount_rows(np.zeros((1, 1), np.uint64))
        for kernel, argtypes in signatures:
            _load_cached(kernel, argtypes)


@contextlib.contextmanager
def numba_started_beside() -> Iterator[None]:
    """Run numba's import and start-up (:func:`_start_numba`) in a thread while the block
    opens the map and queries it (DuckDB and Arrow release the GIL): the same CPU time, but
    on another core when one is free. The update's first import of numba or a kernel waits
    for the thread's (Python's import lock), its first kernel call for the rest (numba's
    compiler lock); joined when the block ends."""
    t = threading.Thread(target=_start_numba, name="linkage-numba-start", daemon=True)
    t.start()
    try:
        yield
    finally:
        t.join()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic cyclic garbage collection inside the block (numba's start-up makes
    objects by the hundred thousand, each few thousand a collection that finds nothing to
    free); the previous state is restored after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
