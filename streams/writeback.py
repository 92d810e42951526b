"""A write-back layer over a state table: a batch's writes reach the table once.

A faust table sends a changelog record on every write, so a worker that wrote a
partition's clock and a dossier's state per event sent two or three changelog
records per event; most of its time went there. The stages write through a
:class:`WriteBack` instead, and the runner calls :meth:`WriteBack.flush` at the
end of each batch: every key written in the batch goes to the table once, with
its last value, and with the partition of the record that last wrote it (a faust
changelog is partitioned like the stream that feeds it, so the runner sets
:attr:`WriteBack.partition` before each record).

Reads see the batch's own writes first. Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

_DELETED = object()

Put = Callable[[str, Any, int | None], None]
"""``put(key, value, partition)``; ``value`` None means the key was deleted."""


class WriteBack(MutableMapping[str, Any]):
    def __init__(self, table: MutableMapping[str, Any]) -> None:
        self.table = table
        self.partition: int | None = None
        """The partition of the record being applied (the changelog's partition)."""
        self._local: dict[str, tuple[Any, int | None]] = {}

    def __getitem__(self, key: str) -> Any:
        held = self._local.get(key)
        if held is None:
            return self.table[key]
        if held[0] is _DELETED:
            raise KeyError(key)
        return held[0]

    def __setitem__(self, key: str, value: Any) -> None:
        self._local[key] = (value, self.partition)

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self._local[key] = (_DELETED, self.partition)

    def __contains__(self, key: object) -> bool:
        held = self._local.get(key)  # type: ignore[call-overload]
        if held is None:
            return key in self.table
        return held[0] is not _DELETED

    def __iter__(self) -> Iterator[str]:
        for key, (value, _) in list(self._local.items()):
            if value is not _DELETED:
                yield key
        for key in list(self.table):
            if key not in self._local:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def pending(self) -> int:
        """Keys written (or deleted) since the last flush."""
        return len(self._local)

    def flush(self, put: Put | None = None) -> int:
        """Write the batch's last values to the table (through ``put`` when given, else
        by plain assignment); how many keys were written."""
        n = len(self._local)
        for key, (value, partition) in self._local.items():
            gone = value is _DELETED
            if put is not None:
                put(key, None if gone else value, partition)
            elif gone:
                self.table.pop(key, None)
            else:
                self.table[key] = value
        self._local.clear()
        return n
