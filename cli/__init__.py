"""The ``dossier`` command line: the only room that speaks click, and the top of the house.

``main`` (the group; ``pyproject.toml`` names it, nothing imports it) gathers the
``COMMANDS`` of one module per room:

* ``ledger``: ``ingest``, ``status``, ``forget``;
* ``audit``: ``verify``, ``digest``, ``keys init``;
* ``relay``: ``kafka init``, ``relay``;
* ``projections``: ``history``, ``control-sheet``, ``workload``, ``project``, ``rebuild``;
* ``streams``: ``process``, ``worker``, ``tick``, ``alerts check|tail|deliver``;
* ``analytics``: ``sink``, ``query``, ``report``;
* ``interchange``: ``import``, ``export``;
* ``simulator``: ``simulate``;
* ``web``: ``serve``;
* ``system``: ``demo``, ``run``.

``options`` holds what they share (``--data-dir``, also before the subcommand;
``--format``, ``--bootstrap``, ``--db``, instants; ``echo_json``) and the one mapping
from the rooms' named failures to click errors (``click_error``); ``render`` prints
rows as a table, CSV, JSON or HTML; ``progress`` draws progress on stderr. Command
modules import the rooms inside their functions, so ``dossier --help`` stays fast.
"""
