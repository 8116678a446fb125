"""Correlation parameters: what SREs tune. Validated, immutable, versioned by the store.

Every weight, threshold and window the engine uses lives here, not in code, so that a
decision can name the parameters version it was taken under and a change of behaviour
is a change of data. Unknown keys, thresholds outside [0, 1], negative windows, windows
longer than a year (``MAX_WINDOW_S``: the engine adds them to event times) and infinite or
NaN numbers are rejected (``pydantic.ValidationError`` names the field).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The longest any window or timer may be: 366 days. Windows are added to event times,
# which ``triage.domain.event`` bounds to the years 1970-2199, so the sum always stays
# within what ``datetime`` holds.
MAX_WINDOW_S = 366 * 24 * 3600.0


class CorrelationParameters(BaseModel):
    """Windows and timers are in seconds, with Alertmanager's names where they mean the same.

    Paging (Alertmanager's timers, PagerDuty's auto-pause):

    * ``group_wait``: how long a new incident collects alerts before its first page
      (informational; pages are decided per event, see ``auto_pause``).
    * ``group_interval``: the least time between two update pages of one incident.
    * ``repeat_interval``: re-page an incident whose alerts keep firing unchanged.
    * ``auto_pause``: PagerDuty's auto-pause for transient alerts. A new incident's first
      page is held this long; if all its alerts resolve before, it is recorded as
      transient and pages nobody. 0 pages at once. The default, 480 s, comes from a sweep
      on the development data (docs/quality.md, "Choosing auto_pause").
    * ``chronic_window``: damping of chronic and flapping alert families
      (``correlation/holds.py``). An incident opened by an alert whose family (the same
      template on the same service or host) already opened an incident that outlasted
      its pause, and began an episode at most this long ago, pages nobody until it
      changes: a more severe alert, another service, or another family joins it. The
      family's episodes are remembered this long. 0 turns damping off.

    Grouping windows:

    * ``window``: an incident accepts new events while its last event is at most this old.
    * ``max_incident_age``: an incident stops accepting events this long after it
      opened, so that a chronic problem cannot grow one incident forever.
    * ``lone_window``: a group holding one log record or span and no alert (a stray
      error, most likely noise) accepts further events only this long.
    * ``reopen_window``: an incident whose alerts all resolved still accepts events this
      long (trailing logs; a flapping alert re-fires into it and reopens it).
    * ``propagation_window``: a fault spreads to its neighbours within minutes. While an
      incident is younger than this, an event may join it on topology and time alone
      (a new service, a new kind of message). Afterwards it only accepts what it has
      already shown: a (service, template) pair it has seen, or, for a log or span (not a
      firing alert), a template of the same family on a service it showed within this
      window.
    * ``onset_window`` and ``onset_margin``: an incident's onset. A fault shows on the
      services around it within its first minutes, one symptom after another, and each
      symptom's first event is often a log or span on a neighbouring service that fits its
      young group poorly on text. While a group (an incident, or a noise group an alert
      may promote) is younger than ``onset_window``, an event that fits no group at
      ``threshold`` joins the best one related to its service in the service graph
      (within ``max_hops``) that scores at least ``threshold - onset_margin`` (no rule blocking
      it), rather than opening a group of its own that would page again (an event of a
      host only into a group that is still its pods' records: ``scoring.at_onset``).
      ``onset_window`` or
      ``onset_margin`` 0 turns it off. The defaults come from a sweep on the development
      data (docs/quality.md, "The onset rule").
    * ``dedup_window``: a log line or span identical to one seen this recently is a
      duplicate. Alerts are duplicates while their fingerprint is firing.
    * ``resolve_timeout``: Alertmanager's ``resolve_timeout``, for alerts that say no start
      time: one not heard of for this long is taken as resolved, so that its next firing
      is decided afresh rather than as a duplicate in an incident of long ago (a source
      that sends no resolves, or one whose resolve was lost). An alert with a start time
      needs none: a later start says the episode is new. The same bound ends a
      precedent: a (service, template) pair an incident has not shown for this long no
      longer draws the pair's next event into it (``scoring.fresh_precedent``).

    Scoring (each component is in [0, 1]; the score is their weighted mean):

    * ``weight_text``: similarity of the event's template to the incident's templates
      (1 for a template it already holds, else the best cosine of the template embeddings).
    * ``weight_topology``: service-graph proximity: 1 for a service the incident holds,
      ``hop_decay ** hops`` within ``max_hops`` over declared and trace-learned edges, else 0.
    * ``weight_time``: ``exp(-gap / time_decay)``, the gap measured from the incident's last
      event on the same (service, template), else on the same service, else anywhere.
    * ``weight_labels``: shared identity labels (pod, node, instance, host).
    * ``weight_family``: the event's template belongs to an alert family (``models.families``,
      fitted offline) that the incident already shows. Used only when the correlator is
      given families.
    * ``threshold``: attach to the best candidate when its score reaches this, else open.
    * ``family_threshold``: template similarity from which two templates count as one
      family ("same template family 0.93").
    * ``require_topology``: never join an event to an incident on another service
      without a known relation between the two (text and time alone are not enough).
    * ``centroid_radius``: besides the incidents on the event's service and its graph
      neighbours, the centroid index proposes every incident whose template centroid has
      at least this cosine with the event's template (how events without a service, or
      on services the graph does not relate, find their incident).

    Suggestions (``models.recommender``: responders and remediations from similar past
    incidents, on pages and ``GET /incidents/{id}``):

    * ``suggest_neighbours``: how many similar past incidents to consult and show.
    * ``suggest_min_similarity``: the least cosine between two incidents' template
      centroids for the older one to count as similar.
    """

    # NaN and infinities compare with nothing and overflow every time they are added.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # paging
    group_wait: float = Field(30.0, ge=0, le=MAX_WINDOW_S)
    group_interval: float = Field(300.0, ge=0, le=MAX_WINDOW_S)
    repeat_interval: float = Field(4 * 3600.0, ge=0, le=MAX_WINDOW_S)
    auto_pause: float = Field(480.0, ge=0, le=MAX_WINDOW_S)
    chronic_window: float = Field(7 * 24 * 3600.0, ge=0, le=MAX_WINDOW_S)
    # windows
    window: float = Field(300.0, gt=0, le=MAX_WINDOW_S)
    max_incident_age: float = Field(6 * 3600.0, gt=0, le=MAX_WINDOW_S)
    lone_window: float = Field(60.0, ge=0, le=MAX_WINDOW_S)
    reopen_window: float = Field(120.0, ge=0, le=MAX_WINDOW_S)
    propagation_window: float = Field(900.0, ge=0, le=MAX_WINDOW_S)
    onset_window: float = Field(300.0, ge=0, le=MAX_WINDOW_S)
    dedup_window: float = Field(3600.0, ge=0, le=MAX_WINDOW_S)
    resolve_timeout: float = Field(3600.0, gt=0, le=MAX_WINDOW_S)
    # scoring
    weight_text: float = Field(0.30, ge=0, le=1)
    weight_topology: float = Field(0.45, ge=0, le=1)
    weight_time: float = Field(0.25, ge=0, le=1)
    weight_labels: float = Field(0.0, ge=0, le=1)
    weight_family: float = Field(0.0, ge=0, le=1)
    threshold: float = Field(0.55, ge=0, le=1)
    family_threshold: float = Field(0.85, ge=0, le=1)
    onset_margin: float = Field(0.10, ge=0, le=1)
    time_decay: float = Field(300.0, gt=0, le=MAX_WINDOW_S)
    hop_decay: float = Field(0.5, ge=0, le=1)
    max_hops: int = Field(2, ge=0, le=6)
    require_topology: bool = True
    centroid_radius: float = Field(0.5, ge=0, le=1)
    # suggestions
    suggest_neighbours: int = Field(5, ge=1, le=50)
    suggest_min_similarity: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _consistent(self) -> "CorrelationParameters":
        if self.max_incident_age < self.window:
            raise ValueError("max_incident_age must be at least window")
        if self.weight_text + self.weight_topology + self.weight_time + self.weight_labels <= 0:
            raise ValueError("at least one of weight_text, weight_topology, weight_time, weight_labels "
                             "must be positive")
        return self

    @property
    def weights(self) -> dict[str, float]:
        return {"text": self.weight_text, "topology": self.weight_topology,
                "time": self.weight_time, "labels": self.weight_labels, "family": self.weight_family}

    def summary(self) -> dict[str, Any]:
        """The values a decision's evidence quotes."""
        return {"threshold": self.threshold, "weights": self.weights}
