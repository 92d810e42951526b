"""Auditor and read-model commands (being built)."""

COMMANDS: list = []
