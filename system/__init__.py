"""The whole system wired on one machine.

``process`` (``dossier process``: the ledger, the stream processors and their store in
``analytics.duckdb``, the subscribers), ``demo`` (``dossier demo``: simulate, ingest,
verify, project, process, report, each stage resumable), ``service`` (``dossier run``:
an inbox kept current). ``harness/``: the distributed path run on one machine for
tests and benches (a Tansu broker, writers, relay and workers, crash scenarios).
"""
