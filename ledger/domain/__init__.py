"""The ledger's pure core: the law and the data, with no I/O library.

``events`` (the one envelope: validation, upcasting), ``lifecycle`` (the lifecycle fold:
impossible sequences refused, irregular conduct kept as evidence), ``durations``,
``working_calendar`` (working days, office hours, due instants, the forwarding cutoff),
``deadlines`` (on-time classes and the instant a dossier turns overdue), ``rules`` and
``rulesets/`` (dated rule sets), ``catalog`` and ``catalogdata/`` (the national
procedure catalogue), ``hashchain`` (chains and Merkle roots), ``privacy``
(pseudonyms, sealed applicant blocks), ``watermark`` (the one "now"), ``signal_kinds``.
Every other room may import it; it imports none of them.
"""
