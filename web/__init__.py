"""Read-only web pages and JSON API (``dossier serve``): nothing here writes.

``app`` (the Starlette routes, templates and API), ``site`` (what the pages show, read
from the ledger, the read models and the analysts' snapshot), ``server`` (the app under
uvicorn in a background thread, for tests and benches). Templates in ``templates/``.
"""
