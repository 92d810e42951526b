"""Kafka topic names: the one place they are spelled."""

EVENTS = "dossier.events"
"""Every committed ledger event; key = dossier id (one dossier stays in one partition)."""
ALERTS = "dossier.alerts"
SIGNALS = "dossier.signals"
METRICS = "dossier.metrics"
DLQ = "dossier.dlq"
"""Records a consumer could not handle, with the reason in a header."""

ALL = (EVENTS, ALERTS, SIGNALS, METRICS, DLQ)
DEFAULT_PARTITIONS = 12
