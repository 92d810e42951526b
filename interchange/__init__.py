"""Real logs in and out: import case logs (XES, CSV) through a mapping file, export
the ledger as XES or CSV for process-mining tools. See docs/import.md."""
