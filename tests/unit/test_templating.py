"""Events to templates: log lines through the miner, alerts and spans through mask()."""

from __future__ import annotations

from tests.conftest import make_event
from triage.correlation.templating import Templater, alert_text, span_text


def test_alert_titles_mask_their_own_label_values_and_state_prefix() -> None:
    a = make_event(0, title="DOWN: Host out of disk space (instance gke-pool-1-abcd:9100)",
                   labels={"alertname": "HostOutOfDiskSpace", "instance": "gke-pool-1-abcd:9100"})
    b = make_event(0, title="Host out of disk space (instance gke-pool-2-wxyz:9100)",
                   labels={"alertname": "HostOutOfDiskSpace", "instance": "gke-pool-2-wxyz:9100"})
    assert alert_text(a) == alert_text(b) == "Host out of disk space (instance <*>)"
    t = Templater()
    assert t.template_of(a).id == t.template_of(b).id and t.template_of(a).id.startswith("A")


def test_spans_are_templated_by_operation_and_failure() -> None:
    s1 = make_event(0, kind="span", source="otel", title="Cart/GetCart",
                    body="Cart/GetCart failed: DEADLINE_EXCEEDED after 700 ms", labels={"status_code": "DATA_LOSS"})
    s2 = make_event(0, kind="span", source="otel", title="Cart/GetCart", body="", labels={"status_code": "UNAVAILABLE"})
    assert span_text(s1) == "Cart/GetCart failed: DEADLINE_EXCEEDED after <*> DATA_LOSS"
    assert span_text(s2) == "Cart/GetCart UNAVAILABLE"


def test_log_templates_are_learned_and_persist() -> None:
    t = Templater()
    ids = {t.template_of(make_event(0, kind="log", source="otel", title=f"connect to 10.0.0.{i} failed")).id
           for i in range(5)}
    assert len(ids) == 1 and t.dirty and t.version >= 1
    restored = Templater.from_snapshot(t.snapshot())
    again = restored.template_of(make_event(0, kind="log", source="otel", title="connect to 10.9.9.9 failed"))
    assert again.id in ids and again.text == "connect to <*> failed"


def test_no_template_text_holds_a_nul_character() -> None:
    # Template texts are cached and stored, and PostgreSQL's text cannot hold NUL.
    log = make_event(0, kind="log", source="otel", title="read \x00\x00 from socket 7")
    # Validation refuses a NUL in a label now; an event stored before may still hold one.
    span = make_event(0, kind="span", source="otel", title="GetCart").model_copy(
        update={"labels": {"status_code": "ERR\x00"}})
    alert = make_event(0, title="disk \x00 full", labels={"alertname": "Disk"})
    templater = Templater()
    for event in (log, span, alert):
        assert "\x00" not in templater.template_of(event).text
    assert "ERR\ufffd" in span_text(span)
