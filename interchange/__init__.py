"""Real logs in and out (see docs/import.md).

In: ``importer`` (``dossier import``: a case log, through a mapping, into the ledger),
``mapping`` (the mapping file), ``values`` (log values as ledger values), ``cases`` (one
case -> one dossier's envelopes, pure), ``xes`` and ``csvlog`` (the two log formats,
streamed). Out: ``export`` (``dossier export``: XES or CSV for process-mining tools) and
``parquet`` (``dossier export --parquet``: the analysts' tables).
"""
