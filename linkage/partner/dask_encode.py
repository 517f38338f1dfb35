"""Encoding on the partner's own Dask cluster: the per-batch task and its client side.

Each worker reads the secret from a file path itself (the secret never travels through the
scheduler) and runs the same per-batch recipe as the in-process threads
(:func:`linkage.partner.pipeline.encode_one_batch`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from linkage.dask_session import DaskSession
from linkage.errors import CompatibilityError

if TYPE_CHECKING:
    from linkage.schema import Schema


_WORKER_ENCODERS = threading.local()  # one Encoder per worker thread: it is not thread-safe


def _encode_task(
    schema_json: str,
    secret_file: str,
    date_formats: dict[str, str],
    today: str | None,
    id_column: str,
    field_col: dict[str, str],
    batch: dict[str, pa.Array],
    placeholders: tuple[dict[str, list[str]], bool] = ({}, False),
) -> tuple[pa.Array, Any, str]:
    """Encode one batch on a worker. The worker reads the secret from ``secret_file`` itself
    (the secret never travels) and keeps one Encoder (token cache) per configuration and
    worker thread (an Encoder's token table must not be shared between threads)."""
    import datetime as _dt
    import json

    from linkage.partner.dates import DateFormat
    from linkage.partner.encoder import Encoder
    from linkage.partner.plan import encode_one_batch
    from linkage.schema import Schema
    from linkage.secret import Secret

    suspects, as_missing = placeholders
    key = (
        schema_json, secret_file, tuple(sorted(date_formats.items())), today,
        tuple((f, tuple(v)) for f, v in sorted(suspects.items())), as_missing,
    )  # fmt: skip
    cached = getattr(_WORKER_ENCODERS, "by_key", None)
    enc = cached.get(key) if cached is not None else None
    if enc is None:
        schema = Schema.from_dict(json.loads(schema_json))
        secret = Secret.from_file(secret_file)
        enc = Encoder(
            schema,
            secret,
            date_formats={f: DateFormat(fmt) for f, fmt in date_formats.items()},
            today=_dt.date.fromisoformat(today) if today else None,
            parallel=False,
            placeholders=suspects,
            placeholders_missing=as_missing,
        )
        _WORKER_ENCODERS.by_key = {key: enc}
    ids, res = encode_one_batch(enc, batch, id_column, field_col)
    return ids, res, enc.key_check


class DaskEncoder:
    """Encodes read batches on Dask workers, in order, a bounded number in flight.

    Each worker reads the secret from the same ``secret_file`` path; the key-check value each
    task returns is compared with the client's, so a worker that read a different secret
    stops the run (nothing is written)."""

    def __init__(
        self,
        session: DaskSession,
        schema: Schema,
        secret_file: Path,
        key_check: str,
        today: Any = None,
    ) -> None:
        self.session = session
        self.schema_json = schema.to_json()
        self.secret_file = str(secret_file.resolve())
        self.key_check = key_check
        self.today = today.isoformat() if today is not None else None

    def map(self, plan: Any, batches: Iterator[dict[str, pa.Array]]) -> Iterator[Any]:
        client = self.session.client
        in_flight = 2 * self.session.n_threads()
        fmts = {f: d.fmt for f, d in plan.date_formats.items()}
        args = (self.schema_json, self.secret_file, fmts, self.today, plan.id_column)
        cols, found = dict(plan.field_col), (plan.placeholder_values, plan.placeholders_missing)
        pending: deque[Any] = deque()

        def result(fut: Any) -> Any:
            ids, res, kc = fut.result()
            if kc != self.key_check:
                raise CompatibilityError(
                    f"a Dask worker read a different secret from {self.secret_file} than this "
                    "machine: every worker must see the same secret file"
                )
            return ids, res

        try:
            for batch in batches:
                pending.append(client.submit(_encode_task, *args, cols, batch, found, pure=False))
                if len(pending) > in_flight:
                    yield result(pending.popleft())
            while pending:
                yield result(pending.popleft())
        finally:
            for fut in pending:
                fut.cancel()
