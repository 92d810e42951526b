"""``dossier kafka`` and ``dossier relay`` commands (being built)."""

COMMANDS: list = []
