"""The analysts' database (DuckDB): loader, views, snapshot for readers, report and Parquet export.

``loader`` (the tables, in the caller's transaction), ``rows`` (their Arrow shape),
``schema`` and ``views`` (DDL and the official figures), ``snapshot`` (readers while it
loads), ``sink`` (``dossier sink``), ``report`` (``dossier report``), ``export``
(``dossier export --parquet``), ``cli``. See docs/analytics.md.
"""
