"""Partner side: an extract (CSV/Parquet) -> an encoded file of keyed Bloom filters.

The only package that loads the project secret. Pipeline: :mod:`.reader` (the extract) ->
:mod:`.normalisers` (values) -> :mod:`.encoder` (tokens, keyed positions, bits, block keys) ->
:mod:`.pipeline` (batches, threads or Dask workers, rejects, the encoded file).
"""

from linkage.partner.pipeline import EncodeSummary, encode, encode_file

__all__ = ["EncodeSummary", "encode", "encode_file"]
