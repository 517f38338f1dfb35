"""Run a match behaviour test on every candidate engine (as splink's ``mark_with_dialects``).

``@each_engine`` parametrises a test over the engines; the test takes the ``linker``
fixture, a callable with :func:`linkage.match`'s arguments. For the Dask engine, in-memory
encoded tables are written to files first (its workers read files), and one LocalCluster is
shared by the whole test session. Results must not depend on the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from linkage.encoded import EncodedTable
from linkage.tlu.linker import match
from linkage.tlu.result import LinkageResult

ENGINES = ["in-process", pytest.param("dask", marks=pytest.mark.dask)]

Linker = Callable[..., LinkageResult]


def each_engine(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Parametrise ``fn`` over every engine; ``fn`` takes the ``linker`` fixture."""
    return pytest.mark.parametrize("linker", ENGINES, indirect=True)(fn)


@pytest.fixture(scope="session")
def dask_session() -> Iterator[Any]:
    pytest.importorskip("dask.distributed")
    from linkage.dask_session import open_scheduler
    from linkage.tlu.dask_match import warm_worker

    with open_scheduler("local:2", warm=warm_worker) as s:
        yield s


@pytest.fixture
def linker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Linker:
    if request.param == "in-process":
        return match
    session = request.getfixturevalue("dask_session")
    folder = tmp_path_factory.mktemp("engine_inputs")
    written: dict[int, Path] = {}

    def as_path(item: EncodedTable | str | Path) -> str | Path:
        if not isinstance(item, EncodedTable):
            return item
        if id(item) not in written:
            path = folder / f"{len(written)}_{item.party}.parquet"
            item.write(path)
            written[id(item)] = path
        return written[id(item)]

    def run(inputs: Sequence[EncodedTable | str | Path], **kwargs: Any) -> LinkageResult:
        return match([as_path(i) for i in inputs], scheduler=session, **kwargs)

    return run
