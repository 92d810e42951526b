"""The analysts' database (DuckDB): everything about ``analytics.duckdb``.

Schema: ``schema`` (every table, the stream outputs' included) and ``views`` (the
official figures as SQL). Writers: ``connection`` (the one writer's connection, and
``database_path``), ``loader`` and ``rows`` (the analysts' tables, in the caller's
transaction), ``sink`` (``dossier sink``), ``stream_store`` (the embedded stream
runner's outputs, state and checkpoint), ``outbox`` (deliveries owed to subscribers).
Readers: ``snapshot`` (the published read-only copy), ``reader`` (the web pages'),
``feed`` (``dossier alerts tail``), ``report`` (``dossier report``). See docs/analytics.md.
"""
