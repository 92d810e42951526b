"""XES (IEEE 1849) in and out, streamed.

Reading feeds the file to an expat parser in 256 KiB chunks and hands over each
trace as soon as it is complete, so a log of any size is read in the memory of
one trace and a chunk; ``.xes.gz`` is read through gzip without unpacking it
first. (``ElementTree.iterparse`` with element clearing streams too, but builds
an element per attribute: three times slower, and XES is mostly attributes.)
Only the attributes directly on a trace or an event are read (a nested
attribute's children are ignored); values keep their XES type (``int``,
``float``, ``boolean``; ``date`` stays text and is parsed by the mapping, with
its offset or the mapping's time zone). Element names may carry a namespace
prefix (``xes:event``).

Writing streams one ``<trace>`` at a time.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from xml.parsers import expat
from xml.sax.saxutils import quoteattr

from interchange.cases import LogError, SourceCase, SourceEvent

CHUNK = 256 * 1024
_VALUE_KINDS = frozenset({"string", "date", "int", "float", "boolean", "id"})
_TEXT_KINDS = frozenset({"string", "date", "id"})
_NESTING_KINDS = frozenset({"list", "container", "values"})
_KINDS: dict[str, str] = {}  # element name -> its local name


def _value(kind: str, raw: str | None) -> Any:
    if raw is None or kind in ("string", "date", "id"):
        return raw
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
    return raw.strip().lower() == "true"  # boolean


def open_log(path: Path, mode: str = "rb") -> IO[Any]:
    """A log file, through gzip when its name ends in ``.gz``."""
    if path.name.endswith(".gz"):
        return gzip.open(path, mode)  # type: ignore[return-value]
    return open(path, mode)  # noqa: SIM115


class _Reader:
    """expat handlers that collect complete traces into ``done``.

    ``slot`` is the depth of the attributes being read (those of the open event,
    else of the open trace; -1 outside a trace) and ``target`` the dict they go
    to: the common element, a text attribute, costs one lookup and one compare.
    """

    def __init__(self) -> None:
        self.done: list[SourceCase] = []
        self.index = 0
        self.depth = 0  # element depth; the log element is depth 1
        self.trace: dict[str, Any] | None = None
        self.events: list[SourceEvent] = []
        self.event: dict[str, Any] | None = None
        self.slot = -1
        self.target: dict[str, Any] = {}
        self.root_checked = False

    def start(self, name: str, attrs: dict[str, str]) -> None:
        depth = self.depth = self.depth + 1
        kind = _KINDS.get(name)
        if kind is None:
            kind = _KINDS[name] = name.rpartition(":")[2]
        if kind in _TEXT_KINDS:
            if depth == self.slot:
                key = attrs.get("key")
                if key is not None:
                    self.target[key] = attrs.get("value")
            return
        if kind in _VALUE_KINDS:
            if depth == self.slot:
                key = attrs.get("key")
                if key is not None:
                    self.target[key] = _value(kind, attrs.get("value"))
            return
        if depth == 1:
            self.root_checked = True
            if kind != "log":
                raise LogError(f"not an XES log (root element <{name}>)")
        elif kind == "trace" and depth == 2:
            self.trace, self.events = {}, []
            self.target, self.slot = self.trace, 3
        elif kind == "event" and depth == 3 and self.trace is not None:
            self.event = {}
            self.target, self.slot = self.event, 4

    def end(self, name: str) -> None:
        depth = self.depth
        self.depth = depth - 1
        if depth == 3 and self.event is not None:
            self.events.append(SourceEvent(self.event))
            self.event = None
            self.target, self.slot = self.trace, 3  # type: ignore[assignment]
        elif depth == 2 and self.trace is not None:
            self.index += 1
            self.done.append(SourceCase(self.trace, self.events, index=self.index))
            self.trace, self.events = None, []
            self.target, self.slot = {}, -1


def read_xes(path: Path, progress: Any = None) -> Iterator[SourceCase]:
    """Each trace of an XES log as a :class:`SourceCase` (events in file order).

    Raises :class:`LogError` (after the traces before it) if the XML is not
    well-formed. ``progress`` (a callable) is advanced by the bytes read (of
    the compressed file, for ``.gz``).
    """
    reader = _Reader()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    with open_log(path) as f:
        raw = getattr(f, "fileobj", None)  # gzip: count compressed bytes
        seen = 0
        while True:
            try:
                chunk = f.read(CHUNK)
            except (OSError, EOFError) as e:  # a truncated or corrupt .gz
                raise LogError(f"{path}: cannot read: {e}") from None
            try:
                parser.Parse(chunk, not chunk)
            except expat.ExpatError as e:
                yield from reader.done
                raise LogError(
                    f"{path}:{e.lineno}: not well-formed XML (column {e.offset + 1}): "
                    f"{expat.ErrorString(e.code)}"
                ) from None
            except LogError as e:
                raise LogError(f"{path}: {e}") from None
            if progress is not None:
                pos = raw.tell() if raw is not None else seen + len(chunk)
                progress(pos - seen)
                seen = pos
            if reader.done:
                yield from reader.done
                reader.done = []
            if not chunk:
                if not reader.root_checked:
                    raise LogError(f"{path}: not an XES log (no <log> element)")
                return


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
