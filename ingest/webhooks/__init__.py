"""Webhook bodies from monitoring tools, translated into ``Event`` objects.

Pure functions: each takes the decoded JSON body and the time triage received it,
and returns events (or a small result object) or raises ``InvalidEvent`` naming
the offending field. Nothing here does I/O; the API mounts them as follows.

    POST /webhooks/alertmanager      from_alertmanager      Prometheus Alertmanager webhook_config, version "4"
    POST /v2/enqueue                 from_pagerduty_event   PagerDuty Events API v2 (same body as PagerDuty's
    POST /webhooks/pagerduty/events                         own endpoint, so tools can point at triage instead);
                                                            answer 202 with ``PagerDutyEnqueue.response_body()``
    POST /webhooks/pagerduty         from_pagerduty_webhook PagerDuty Webhooks v3 -> ``Feedback`` (responder
                                                            actions), after ``verify_pagerduty_signature``
    POST /webhooks/grafana           from_grafana           Grafana unified alerting webhook contact point
    POST /webhooks/datadog           from_datadog           Datadog Webhooks integration with the payload
                                                            template ``DATADOG_PAYLOAD_TEMPLATE``
    POST /webhooks/generic           from_generic           one object, or a list of objects, in Event's
                                                            own field names

Conventions shared by every translator:

* Severity is never guessed. A value the source sends is mapped explicitly (or
  through ``normalize_severity``, which rejects unknown words). Where a format
  legitimately carries no severity (an Alertmanager alert without a ``severity``
  label, a PagerDuty acknowledge), the documented default of that translator is
  used and the event is marked with the label ``triage.severity_defaulted = True``.
* Event ids: where the source gives each notification an identity (Datadog
  ``$ID``, OpenTelemetry span ids) the id is derived from it, so a retried HTTP
  delivery stores once. Alertmanager, Grafana and PagerDuty Events give none, and
  their re-notifications of an unchanged alert are real signals that the
  correlator counts as duplicates; so their ids hash the notification content
  *and* ``received_at``: each delivery is one stored event.
* ``fingerprint`` is the source's own dedup key, passed through unchanged.
* Secrets (the PagerDuty ``routing_key``) never reach an Event's labels or raw.
"""

from __future__ import annotations

from triage.ingest.webhooks.alertmanager import (
    ALERT_DEFAULT_SEVERITY,
    from_alertmanager,
    from_grafana,
)
from triage.ingest.webhooks.pagerduty import (
    FEEDBACK_EVENT_TYPES,
    Feedback,
    PAGERDUTY_ACCEPTED,
    PD_ACK_RESOLVE_SEVERITY,
    PagerDutyEnqueue,
    PagerDutyRef,
    from_pagerduty_event,
    from_pagerduty_webhook,
    verify_pagerduty_signature,
)
from triage.ingest.webhooks.datadog import (
    DATADOG_PAYLOAD_TEMPLATE,
    from_datadog,
)
from triage.ingest.webhooks.generic import (
    from_generic,
)
from triage.ingest.webhooks._common import SEVERITY_DEFAULTED, TIME_DEFAULTED

__all__ = [
    "ALERT_DEFAULT_SEVERITY",
    "DATADOG_PAYLOAD_TEMPLATE",
    "FEEDBACK_EVENT_TYPES",
    "Feedback",
    "PAGERDUTY_ACCEPTED",
    "PD_ACK_RESOLVE_SEVERITY",
    "PagerDutyEnqueue",
    "PagerDutyRef",
    "SEVERITY_DEFAULTED",
    "TIME_DEFAULTED",
    "from_alertmanager",
    "from_datadog",
    "from_generic",
    "from_grafana",
    "from_pagerduty_event",
    "from_pagerduty_webhook",
    "verify_pagerduty_signature",
]
