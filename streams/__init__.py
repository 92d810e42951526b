"""The stream processors: on-time metrics, deadline alerts and misconduct signals.

Pure stages: ``dossier`` (the per-dossier processor), ``aggregates`` (the keyed stage:
daily windows, applicants, officials), ``signals/`` (the detectors of brief §8),
``outputs`` (the row shape of every output), ``config`` (their parameters),
``subscriptions`` (who is told what). Engines: ``pipeline`` (both stages in one
process), ``embedded`` (``dossier process``'s loop, handed its store), ``partitioned``
and ``faust_app`` (``dossier worker`` on Kafka). ``delivery``: the channels (webhook,
Kafka). Time is the watermark (``ledger.domain.watermark``), never the wall clock in a
replay.
"""
