"""XES (IEEE 1849) in and out, streamed.

Reading uses ``iterparse`` and clears every event and trace once read, so a
log of any size is read in the memory of one trace; ``.xes.gz`` is read
through gzip without unpacking it first. Only the attributes directly on a
trace or an event are read (a nested attribute's children are ignored); values
keep their XES type (``int``, ``float``, ``boolean``; ``date`` stays text and
is parsed by the mapping, with its offset or the mapping's time zone).

Writing streams one ``<trace>`` at a time.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import ParseError, iterparse
from xml.sax.saxutils import quoteattr

from ledger.eventlog.cases import LogError, SourceCase, SourceEvent

_ATTRIBUTE_TAGS = frozenset(
    {"string", "date", "int", "float", "boolean", "id", "list", "container"}
)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2] if tag[:1] == "{" else tag


def _value(kind: str, raw: str | None) -> Any:
    if raw is None:
        return None
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            return raw
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            return raw
    if kind == "boolean":
        return raw.strip().lower() == "true"
    return raw


def _attributes(elem: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in elem:
        kind = _local(child.tag)
        if kind in _ATTRIBUTE_TAGS:
            key = child.get("key")
            if key is not None and kind not in ("list", "container"):
                out[key] = _value(kind, child.get("value"))
    return out


def open_log(path: Path, mode: str = "rb") -> IO[Any]:
    """A log file, through gzip when its name ends in ``.gz``."""
    if path.name.endswith(".gz"):
        return gzip.open(path, mode)  # type: ignore[return-value]
    return open(path, mode)  # noqa: SIM115


def read_xes(path: Path, progress: Any = None) -> Iterator[SourceCase]:
    """Each trace of an XES log as a :class:`SourceCase` (events in file order).

    Raises :class:`LogError` (after the traces before it) if the XML is not
    well-formed. ``progress`` (a callable) is advanced by the compressed or
    plain bytes read.
    """
    with open_log(path) as raw:
        f = _Counting(raw, progress) if progress is not None else raw
        root = None
        index = 0
        events: list[SourceEvent] = []
        try:
            for action, elem in iterparse(f, events=("start", "end")):
                if root is None:
                    root = elem
                    if _local(elem.tag) != "log":
                        raise LogError(
                            f"{path}: not an XES log (root element <{_local(elem.tag)}>)"
                        )
                    continue
                if action == "start":
                    continue
                tag = _local(elem.tag)
                if tag == "event":
                    events.append(SourceEvent(_attributes(elem)))
                    elem.clear()
                elif tag == "trace":
                    index += 1
                    yield SourceCase(_attributes(elem), events, index=index)
                    events = []
                    elem.clear()
                    root.clear()  # drop the cleared trace from the log element
        except ParseError as e:
            line, column = e.position
            raise LogError(f"{path}:{line}: not well-formed XML (column {column}): {e}") from None
        except (OSError, EOFError) as e:  # a truncated .gz
            raise LogError(f"{path}: cannot read: {e}") from None


class _Counting:
    """A binary file that reports the bytes read to a progress callable."""

    def __init__(self, f: IO[bytes], progress: Any) -> None:
        self._f, self._progress = f, progress
        self._raw = getattr(f, "fileobj", None)  # gzip: count compressed bytes
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if self._raw is not None:
            pos = self._raw.tell()
            self._progress(pos - self._pos)
            self._pos = pos
        else:
            self._progress(len(data))
        return data


# --- writing ------------------------------------------------------------------------

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1849-2016" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>
  <extension name="Organizational" prefix="org" uri="http://www.xes-standard.org/org.xesext"/>
  <extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>
  <extension name="Identity" prefix="identity" uri="http://www.xes-standard.org/identity.xesext"/>
  <global scope="trace">
    <string key="concept:name" value="UNKNOWN"/>
  </global>
  <global scope="event">
    <string key="concept:name" value="UNKNOWN"/>
    <date key="time:timestamp" value="1970-01-01T00:00:00+00:00"/>
    <string key="org:resource" value="UNKNOWN"/>
    <string key="lifecycle:transition" value="complete"/>
  </global>
  <classifier name="Activity" keys="concept:name"/>
  <classifier name="Resource" keys="org:resource"/>
  <string key="concept:name" value="dossier-ledger"/>
"""
FOOTER = "</log>\n"


def _attribute(key: str, value: Any, kind: str | None = None) -> str:
    if kind is None:
        if isinstance(value, bool):
            kind, value = "boolean", "true" if value else "false"
        elif isinstance(value, int):
            kind = "int"
        elif isinstance(value, float):
            kind = "float"
        else:
            kind = "string"
    return f"<{kind} key={quoteattr(key)} value={quoteattr(str(value))}/>"


def write_trace(
    out: IO[str],
    attrs: list[tuple[str, Any, str | None]],
    events: list[list[tuple[str, Any, str | None]]],
) -> None:
    """One ``<trace>``: its attributes, then each event's, as (key, value, XES type or None)."""
    parts = ["  <trace>\n"]
    parts.extend(f"    {_attribute(k, v, t)}\n" for k, v, t in attrs)
    for event in events:
        parts.append("    <event>\n")
        parts.extend(f"      {_attribute(k, v, t)}\n" for k, v, t in event)
        parts.append("    </event>\n")
    parts.append("  </trace>\n")
    out.write("".join(parts))
