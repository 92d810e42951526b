"""Read models: pure folds of a dossier's events, and the runners that keep them current.

Folds: ``state`` (a dossier's state and ``view``: the one definition of its deadlines and
on-time class), ``audit_trail``, ``control_sheet`` (Form 05), ``workload``. Runners:
``runner`` (from the store's log, with checkpoints; the full ``rebuild``) and
``kafka_runner`` (a consumer group on ``dossier.events``). ``store``: the read-model
tables, SQLite or PostgreSQL.
"""
