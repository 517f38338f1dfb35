"""Trusted linkage unit: encoded files -> linkage map. Never imports the secret or the
partner side (tests/test_boundaries.py enforces it).

One match flow (:mod:`.linker`) whose engines only produce candidates: in-process
(:mod:`.blocking`) or Dask (:mod:`.dask_match`); :mod:`.solver` turns scored pairs into
entities.
"""

from linkage.tlu.linker import match
from linkage.tlu.result import LinkageResult, MatchStats

__all__ = ["LinkageResult", "MatchStats", "match"]
