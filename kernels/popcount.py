"""Population count of 64-bit words and of packed filters.

Filters are C-contiguous ``uint64`` arrays of shape ``(n, W)``; filter ``i`` has bit ``p`` at word
``p // 64``, bit ``p % 64``. ``popcount64`` lowers to ``llvm.ctpop.i64`` (one ``popcnt`` /
``vpopcntq`` instruction on x86); with ``NUMBA_DISABLE_JIT=1`` it is a pure-Python SWAR count.

Also here: :func:`serial_and_parallel`, which compiles one Python body twice (serial and
``parallel=True``) under distinct qualified names so that numba's on-disk cache never hands the
serial machine code to the parallel dispatcher (numba's cache key ignores the ``parallel`` flag).
"""

from __future__ import annotations

import types as _pytypes
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from numba import njit

__all__ = ["KERNELS", "popcount64", "popcount_rows", "serial_and_parallel"]

_M1 = 0x5555555555555555
_M2 = 0x3333333333333333
_M4 = 0x0F0F0F0F0F0F0F0F
_H01 = 0x0101010101010101
_MASK64 = 0xFFFFFFFFFFFFFFFF


def _popcount64_swar(x: Any) -> np.uint64:
    """Bits set in the 64-bit word ``x`` (SWAR: 2-, 4-, 8-bit partial sums, then a multiply).

    popcount(x) = sum_{k<64} bit_k(x).
    """
    v = int(x) & _MASK64
    v = v - ((v >> 1) & _M1)
    v = (v & _M2) + ((v >> 2) & _M2)
    v = (v + (v >> 4)) & _M4
    return np.uint64(((v * _H01) & _MASK64) >> 56)


if getattr(numba.config, "DISABLE_JIT", 0):
    popcount64 = _popcount64_swar
else:
    from llvmlite import ir
    from numba.core import cgutils
    from numba.core import types as nbtypes
    from numba.extending import intrinsic

    @intrinsic
    def popcount64(typingctx: Any, x: Any) -> Any:  # pragma: no cover - compiled
        """Bits set in the 64-bit word ``x``: popcount(x) = sum_{k<64} bit_k(x) (llvm.ctpop.i64)."""
        if not isinstance(x, nbtypes.Integer):
            return None
        sig = nbtypes.uint64(x)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            i64 = ir.IntType(64)
            (val,) = args
            if val.type.width < 64:
                val = builder.zext(val, i64)
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(i64, [i64]), "llvm.ctpop.i64"
            )
            return builder.call(fn, [val])

        return sig, codegen


@njit(cache=True)
def popcount_rows(a: np.ndarray) -> np.ndarray:
    """Bits set per filter: out[i] = sum_w popcount(a[i, w]) for a of shape (n, W), uint64.

    Returns int32[n].
    """
    n = a.shape[0]
    nw = a.shape[1]
    out = np.empty(n, dtype=np.int32)
    for i in range(n):
        c = np.uint64(0)
        for w in range(nw):
            c += popcount64(a[i, w])
        out[i] = np.int32(c)
    return out


def serial_and_parallel(body: Callable[..., Any], **options: Any) -> tuple[Any, Any]:
    """Compile ``body`` twice: ``njit(cache=True)`` and ``njit(cache=True, parallel=True)``.

    ``prange`` in ``body`` runs serially in the first. Each compiled copy gets its own
    ``__qualname__`` (``<name>_serial`` / ``<name>_parallel``) and hence its own cache file.
    """
    out = []
    for suffix, par in (("serial", False), ("parallel", True)):
        fn = _pytypes.FunctionType(
            body.__code__, body.__globals__, f"{body.__name__}_{suffix}", body.__defaults__
        )
        fn.__qualname__ = f"{body.__qualname__}_{suffix}"
        fn.__doc__ = body.__doc__
        fn.__module__ = body.__module__
        out.append(njit(cache=True, parallel=par, **options)(fn))
    return out[0], out[1]


KERNELS: dict[str, Any] = {
    "popcount64": popcount64,
    "popcount_rows": popcount_rows,
}
