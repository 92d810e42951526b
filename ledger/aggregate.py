"""The ``Dossier`` aggregate: how the eventsourcing library reads a dossier's stored events.

A dossier's stored events are its ledger envelopes (``Dossier.Opened`` for the first,
``Dossier.Recorded`` after), encoded by :class:`OrjsonTranscoder`. Apart from the
application (:mod:`ledger.application`) and its write path (:mod:`ledger.write_path`)
because both need the classes, their pinned topics and the transcoder.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from eventsourcing.domain import (
    BaseAggregate,
    CanInitAggregate,
    CanMutateAggregate,
    MetaDomainEvent,
)
from eventsourcing.persistence import Transcoder
from eventsourcing.utils import get_topic

from ledger.domain.lifecycle import EMPTY, Lifecycle, evolve


class DossierNotFound(LookupError):
    def __init__(self, dossier_id: str) -> None:
        super().__init__(f"unknown dossier {dossier_id!r}")
        self.dossier_id = dossier_id


class Dossier(BaseAggregate[str]):
    """One dossier, keyed by its dossier code; its events are ledger envelopes
    and its state is the pure ``Lifecycle`` fold.

    The ledger writes these events itself (``WritePath._stored_event``, in the
    library's exact stored form); the class is how the library reads them back.

    ``TOPIC``: the topics every stored event has carried since the first ledger, when
    these classes lived in ``ledger.application`` (the ``topic`` column, and the
    ``originator_topic`` in an opening event's state). Pinned, so that moving or
    renaming the classes never changes the stored bytes or the reading of old
    ledgers. eventsourcing registers explicit topics and requires one on each event
    class but the base ``Event`` (never stored); a subclass would inherit its parent's
    ``TOPIC``, so each concrete class names its own. Plain class attributes, not
    annotated: never dataclass fields of the events.
    """

    TOPIC = "ledger.application:Dossier"

    class Event(CanMutateAggregate[str], metaclass=MetaDomainEvent):
        originator_id: str
        originator_version: int
        timestamp: datetime  # when the ledger appended it (= envelope appended_at)

    class Opened(Event, CanInitAggregate[str]):
        TOPIC = "ledger.application:Dossier.Opened"

        originator_topic: str
        envelope: dict[str, Any]

    class Recorded(Event):
        TOPIC = "ledger.application:Dossier.Recorded"

        envelope: dict[str, Any]

        def apply(self, aggregate: Dossier) -> None:
            aggregate.state = evolve(aggregate.state, self.envelope)

    def __init__(self, envelope: dict[str, Any]) -> None:
        self.state: Lifecycle = evolve(EMPTY, envelope)


DOSSIER_TOPIC = get_topic(Dossier)
OPENED_TOPIC = get_topic(Dossier.Opened)
RECORDED_TOPIC = get_topic(Dossier.Recorded)
"""The pinned topics (``Dossier.TOPIC``...), as the library computes them."""


class OrjsonTranscoder(Transcoder):
    """JSON via orjson; datetimes at the top level of an event's state are tagged.

    Envelopes are plain JSON values, so only the library's own ``timestamp``
    needs a tag. Several times faster than the stdlib transcoder, which matters
    for bulk ingest and replay.
    """

    def register(self, transcoding: Any) -> None:  # pragma: no cover - not needed
        raise NotImplementedError

    @staticmethod
    def _default(o: Any) -> Any:
        if isinstance(o, datetime):
            return {"_type_": "datetime_iso", "_data_": o.isoformat()}
        raise TypeError(f"cannot encode {type(o).__name__}")

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=self._default, option=orjson.OPT_PASSTHROUGH_DATETIME)

    def decode(self, data: bytes) -> Any:
        obj = orjson.loads(data)
        for key, value in obj.items():
            if isinstance(value, dict) and value.get("_type_") == "datetime_iso":
                obj[key] = datetime.fromisoformat(value["_data_"])
        return obj
