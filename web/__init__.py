"""Read-only web pages and JSON API (``dossier serve``), and the main-job commands."""
