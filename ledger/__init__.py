"""The ledger: the write side, and the proofs that it was not altered.

Writing: ``application`` (``DossierLedger``: reads, cursors, shredding), ``write_path``
(the batch append: validate, check the lifecycle, seal the applicant, hash-chain, store),
``aggregate`` (the ``Dossier`` aggregate and its stored topics), ``ingest`` (JSON Lines
in). Stores: ``sqlite_store``, ``postgres_store`` (recorders with the event index, key
stores), ``log_reader`` and ``scan`` (whole-log reads on a snapshot), ``dossier_order``
(the log regrouped by dossier on disk). Proofs: ``audit`` (verify, Merkle digests),
``signing`` (Ed25519), ``witness`` (the relay's copy on Kafka, digest series). Kafka:
``relay``, ``kafka`` (the adapter), ``topics``. ``settings`` reads every ``DOSSIER_*``
variable; ``bootstrap`` is the only place that opens stores. ``envelope_schema`` writes
the published JSON Schema (``schema/``). The pure core is ``domain/``.
"""
