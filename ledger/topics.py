"""Kafka topic names: the one place they are spelled."""

EVENTS = "dossier.events"
"""Every committed ledger event; key = dossier id (one dossier stays in one partition)."""
ALERTS = "dossier.alerts"
SIGNALS = "dossier.signals"
METRICS = "dossier.metrics"
DLQ = "dossier.dlq"
"""Records a consumer could not handle, with the reason in a header."""
TICKS = "dossier.ticks"
"""Watermark ticks, partitioned like ``dossier.events``: a tick on partition p tells the
stream workers that business time on p has reached an instant (``dossier tick``, or a
worker's wall clock in live mode), so deadlines pass on a partition with no events."""

ALL = (EVENTS, ALERTS, SIGNALS, METRICS, DLQ, TICKS)
DEFAULT_PARTITIONS = 12

DIGESTS = "dossier.digests"
"""Signed Merkle digests of the ledger, one partition: a single ordered series."""

ALL = (*ALL, DIGESTS)
FIXED_PARTITIONS = {DIGESTS: 1}
"""Topics whose partition count does not follow ``--partitions``."""

WITNESSES = (EVENTS, DIGESTS)
"""Topics kept as an independent witness of the ledger: never deleted by age or size."""
WITNESS_CONFIGS = {"retention.ms": "-1", "retention.bytes": "-1"}
