"""Events to templates: the variable parts masked, so that one kind of message is one id.

* **Log records**: the message (``title``) goes through the ``TemplateMiner``, which
  learns templates online (``rpc error: ... lookup <*> on <*>``).
* **Alerts**: the title with the values of its own labels masked first (a Prometheus
  summary interpolates ``{{ $labels.instance }}``, so a label value inside the title is a
  variable by definition), the notification tool's state prefix (``[Triggered]``,
  ``DOWN:``) dropped, then ``mask()``.
* **Spans**: the operation and how it failed (``body``, else the title and the
  ``status_code`` label), through ``mask()``.

A ``Template`` has a stable ``id`` (kind letter + hash of the text, or the miner's id for
logs: the same in every process that sees the same stream) and the ``text`` that gets
embedded. The ids a miner merges away are not chased: a decision uses the id the miner
gave at the time, so that it never depends on how a stream was cut into batches.

State (the miner's snapshot) is JSON; ``version`` counts the changes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from triage.correlation.templates import TemplateMiner, mask
from triage.domain.event import Event, EventKind, without_nul

__all__ = ["Template", "Templater", "alert_template_id", "alert_text", "premask", "span_text"]

_FORMAT = "triage.templater"
# Status words notification tools put before an alert's title.
_STATE_PREFIX_RE = re.compile(
    r"^\s*(?:\[(?:triggered|recovered|resolved|firing(?::\d+)?|warn(?:ing)?|ok|alert|no data)\]"
    r"|(?:down|up|firing|resolved|recovered|ok|alert|problem)\s*:)\s*",
    re.IGNORECASE)
# Labels whose value names the alert rather than a variable part of it.
_NAMING_LABELS = frozenset({"alertname", "severity", "priority", "team"})
_MIN_LABEL_VALUE = 3
_MAX_TEXT = 512


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    text: str


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def alert_template_id(text: str) -> str:
    """The id ``Templater`` gives an alert whose template text is ``text``."""
    return "A" + _digest(text)


def alert_text(event: Event) -> str:
    title = _STATE_PREFIX_RE.sub("", event.title, count=1)
    values = sorted({str(v) for k, v in event.labels.items()
                     if k not in _NAMING_LABELS and isinstance(v, str) and len(v) >= _MIN_LABEL_VALUE},
                    key=len, reverse=True)
    for value in values:
        if value in title:
            title = title.replace(value, "<*>")
    return mask(title)[:_MAX_TEXT]


def span_text(event: Event) -> str:
    text = event.body or event.title
    status = event.labels.get("status_code")
    if status is not None and str(status) not in text:
        # The title and body hold no NUL (the event model's rule); a label may, and a
        # template text is cached and stored (PostgreSQL's text cannot hold one).
        text = f"{text} {without_nul(str(status))}"
    return mask(text)[:_MAX_TEXT]


def premask(event: Event) -> str:
    """The part of ``Templater.template_of`` that depends on the event alone (its masked
    text), which another process can compute beforehand: a log record's ``mask(title)``
    (the miner's key), a span's ``span_text``, an alert's ``alert_text``."""
    if event.kind is EventKind.log:
        return mask(event.title)
    if event.kind is EventKind.span:
        return span_text(event)
    return alert_text(event)


class Templater:
    """Turns events into ``Template``s; learns log templates as it goes.

    ``premasked`` (event id -> ``premask(event)``, made in the process that decoded the
    batch) saves the masking of the events it names; it is not state, and holds only the
    batch being decided."""

    def __init__(self, miner: TemplateMiner | None = None) -> None:
        self.miner = miner or TemplateMiner()
        self.version = 0
        self.dirty = False
        self.premasked: dict[str, str] = {}

    def template_of(self, event: Event) -> Template:
        pre = self.premasked.get(event.id) if self.premasked else None
        if event.kind is EventKind.log:
            match = self.miner.add(event.title, pre)
            if match.change_type != "none":
                self.version += 1
                self.dirty = True
            return Template("L" + match.template_id, match.template[:_MAX_TEXT])
        if event.kind is EventKind.span:
            text = pre if pre is not None else span_text(event)
            return Template("S" + _digest(text), text)
        text = pre if pre is not None else alert_text(event)
        return Template("A" + _digest(text), text)

    # -- persistence ---------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {"format": _FORMAT, "version": self.version,
                "miner": json.loads(self.miner.snapshot().decode("utf-8"))}

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("format") != _FORMAT:
            raise ValueError("not a templater snapshot")
        self.miner.restore(json.dumps(state["miner"]).encode("utf-8"))
        self.version = int(state.get("version", 0))
        self.dirty = False

    @classmethod
    def from_snapshot(cls, state: dict[str, Any]) -> "Templater":
        templater = cls()
        templater.restore(state)
        return templater
