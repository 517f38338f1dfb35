"""The benchmark harness: the machine a run happened on (:mod:`.machine`), wall time, CPU
time and peak RSS of child processes (:mod:`.measure`), and the results files with one
:class:`~benchmarks.harness.results.Figure` per measured number (:mod:`.results`).

Imports nothing from ``linkage`` (peers and benchmarks must stay comparable even while the
package is broken) and nothing random happens at import.
"""
