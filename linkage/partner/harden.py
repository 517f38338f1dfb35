"""A schema's hardening steps, keyed by the project secret, applied to a batch of filters.

Each step ``i`` has its own key, ``Secret.derive("harden", fingerprint, "<i>:<type>")``
(HKDF-SHA256, so different secrets or different schemas give unrelated mappings):

- ``balance`` with ``permute``: the permutation of the 2L bits is
  :func:`linkage.kernels.harden.key_permutation` (key, 2L);
- ``diffusion``: the taps are :func:`linkage.kernels.harden.diffusion_taps` (key, L, m, t);
  with the segmented layout, per segment (:func:`segment_taps`): segment s of b bits takes
  the rows ``diffusion_taps(key_g, b, b e, t) + start`` with ``key_g =
  Secret.derive("harden", fingerprint, "<i>:diffusion:<g>")``, g the segment's shared key
  (else its field name), so fields sharing a key share one map (block-diagonal overall);
- ``blip``: record i's coins come from SipHash-2-4 of its record id (UTF-8) under the first
  16 bytes of the key, so a record's noise depends on the secret and its id only (not on row
  order, batch or thread), and re-encoding an extract gives the same file.

Permutations and taps are computed once per :class:`Hardener` (one per Encoder), the steps
applied once per batch by :meth:`Hardener.apply`. Kernels: :mod:`linkage.kernels.harden`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from linkage.hardening import HardeningStep
from linkage.kernels import harden as hk
from linkage.kernels.siphash import key_words, siphash_batch, siphash_batch_parallel
from linkage.partner.values import string_buffers
from linkage.schema import Schema
from linkage.secret import Secret

__all__ = ["Hardener", "segment_taps", "step_keys"]


def step_keys(schema: Schema, secret: Secret) -> list[bytes]:
    """The 32-byte key of each hardening step of ``schema``."""
    fp = schema.fingerprint
    return [
        secret.derive("harden", fp, f"{i}:{st.type}") for i, st in enumerate(schema.hardening.steps)
    ]


def segment_taps(schema: Schema, secret: Secret, index: int, step: HardeningStep) -> np.ndarray:
    """(output_bits, taps) int64: per-segment diffusion of a segmented schema (hardening step
    ``index``): output segment k reads input segment k only; one keyed map per key group."""
    fp = schema.fingerprint
    e = step.output_bits // schema.filter_length
    rows, maps = [], {}
    for s in schema.segments:
        group = s.shared_key or s.field
        if group not in maps:
            key = secret.derive("harden", fp, f"{index}:diffusion:{group}")
            maps[group] = hk.diffusion_taps(key, s.bits, s.bits * e, step.taps)
        rows.append(maps[group] + s.start)
    return np.ascontiguousarray(np.concatenate(rows), dtype=np.int64)


class Hardener:
    """The hardening steps of one schema under one secret (keyed tables built once)."""

    def __init__(self, schema: Schema, secret: Secret, *, parallel: bool = True) -> None:
        self.parallel = parallel
        self.input_length = schema.filter_length
        self.output_length = schema.output_length
        self.needs_ids = any(st.type == "blip" for st in schema.hardening.steps)
        self.plan: list[tuple[HardeningStep, Any]] = []
        """(step, keyed table): the permutation, the taps or the SipHash key, else None."""
        length = schema.filter_length
        keys = step_keys(schema, secret)
        for i, (st, key) in enumerate(zip(schema.hardening.steps, keys, strict=True)):
            table: Any = None
            if st.type == "balance" and st.permute:
                table = hk.key_permutation(key, 2 * length)
            elif st.type == "diffusion" and schema.segments:
                table = segment_taps(schema, secret, i, st)
            elif st.type == "diffusion":
                table = hk.diffusion_taps(key, length, st.output_bits, st.taps)
            elif st.type == "blip":
                table = key_words(key[:16])
            self.plan.append((st, table))
            length = st.output_length(length)

    def record_seeds(self, k: tuple[np.uint64, np.uint64], ids: pa.Array) -> np.ndarray:
        """uint64 per record: SipHash-2-4 of its id's UTF-8 bytes under the step's key."""
        if not pa.types.is_string(ids.type):
            ids = ids.cast(pa.string())
        data, offsets = string_buffers(ids)
        out = np.empty(len(ids), dtype=np.uint64)
        fn = siphash_batch_parallel if self.parallel else siphash_batch
        with np.errstate(over="ignore"):  # wrapping arithmetic when NUMBA_DISABLE_JIT=1
            fn(k[0], k[1], data, offsets, out)
        return out

    def apply(self, filters: np.ndarray, ids: pa.Array | None = None) -> np.ndarray:
        """The filters (n, L/64) after every step: (n, output_length/64) uint64.

        ``ids`` (the batch's record ids, one per filter) are needed by ``blip`` only."""
        par = self.parallel
        x = filters
        for st, table in self.plan:
            if st.type == "balance":
                x = hk.balance(x, table, parallel=par)
            elif st.type == "xor_fold":
                x = hk.xor_fold(x, parallel=par)
            elif st.type == "rule90":
                x = hk.rule90(x, st.steps, parallel=par)
            elif st.type == "diffusion":
                x = hk.diffusion(x, table, parallel=par)
            else:  # blip
                if ids is None or len(ids) != x.shape[0]:
                    raise ValueError("blip hardening needs the record id of every filter")
                x = hk.blip(x, st.flip, self.record_seeds(table, ids), parallel=par)
        return x
