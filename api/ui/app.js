/* triage web view: incidents with their evidence, pages, noise over time.
 * Plain JavaScript, no build step, nothing loaded from elsewhere. It calls the API with the
 * key entered once (sessionStorage: this tab only); every figure comes from the API. */
"use strict";

const KEY = "triage.key";
const AUTHOR = "triage.author";
const PAGE = 50;
const EVENTS_PAGE = 500;

/* ------------------------------------------------------------------ helpers */

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, String(value));
  append(el, children);
  return el;
}

function pad(n) { return String(n).padStart(2, "0"); }

function utc(iso, withDate = true, zone = true) {
  if (!iso) return "—";
  const d = new Date(iso);
  const time = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  if (!withDate) return time;
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${time}${zone ? " UTC" : ""}`;
}

function ago(iso) {
  if (!iso) return "";
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  const units = [[86400 * 365, "year"], [86400 * 30, "month"], [86400, "day"], [3600, "hour"], [60, "minute"]];
  for (const [size, name] of units) {
    const n = Math.floor(Math.abs(seconds) / size);
    if (n >= 1) return seconds >= 0 ? `${n} ${name}${n > 1 ? "s" : ""} ago` : `in ${n} ${name}${n > 1 ? "s" : ""}`;
  }
  return "just now";
}

function span(seconds) {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  const hours = Math.floor(seconds / 3600);
  return `${hours} h ${Math.round((seconds - hours * 3600) / 60)} min`;
}

const num = (n) => Number(n).toLocaleString("en-US");
const pct = (x) => `${(x * 100).toFixed(1)}%`;

function timeCell(iso) {
  return h("span", { title: utc(iso) }, utc(iso, true, false), h("div", { class: "muted" }, ago(iso)));
}

function severity(value) { return h("span", { class: `badge sev-${value}` }, value); }
function status(value) { return h("span", { class: `badge st-${value}` }, value); }
function kindBadge(value) {
  return h("span", { class: `badge kind-${value}`, title: value === "noise" ? "noise group: pages nobody" : "pages" },
    value === "noise" ? "noise group" : "incident");
}

/* ------------------------------------------------------------------ the API */

class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  let response;
  try {
    response = await fetch(path, { method: options.method || "GET", headers, body, credentials: "omit" });
  } catch (err) {
    throw new ApiError(0, `triage does not answer (${err.message})`);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (err) { data = text; }
  if (!response.ok) throw new ApiError(response.status, (data && data.detail) || response.statusText);
  return data;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== "" && value !== null && value !== undefined) q.set(name, value);
  const text = q.toString();
  return text ? `?${text}` : "";
}

/* What to tell the engineer when a call fails. `writing`: the call needs the ingest scope. */
function explain(err, writing = false) {
  if (err.status === 401) {
    return writing
      ? "An API key with the ingest scope is needed to change incidents: enter one at the top right."
      : "This API needs a key with the read scope: enter it at the top right (kept in this tab only).";
  }
  if (err.status === 403) {
    return writing
      ? "This key lacks the ingest scope: merging, splitting and recording a resolution need a key with the " +
        "ingest scope (triage keys create --scope ingest)."
      : `This key may not read: ${err.message}`;
  }
  if (err.status === 503) return "The store does not answer right now; retry in a few seconds.";
  if (err.status === 0) return err.message;
  const detail = Array.isArray(err.detail) ? err.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ")
    : err.message;
  return `${err.status}: ${detail}`;
}

function showBanner(text, kind = "") {
  const banner = document.getElementById("banner");
  banner.className = `banner ${kind}`;
  banner.textContent = text;
  banner.hidden = !text;
}

function failed(err) {
  const app = document.getElementById("app");
  app.replaceChildren(h("div", { class: "panel" }, h("p", {}, explain(err))));
  if (err.status === 401 || err.status === 403) openKeyForm();
}

/* ------------------------------------------------------------------ the key */

function keyState() {
  const key = sessionStorage.getItem(KEY);
  document.getElementById("key-state").textContent = key ? `key …${key.slice(-4)}` : "no API key";
  document.getElementById("key-edit").textContent = key ? "Change key" : "Enter key";
}

function openKeyForm() {
  document.getElementById("key-form").hidden = false;
  document.getElementById("key-edit").hidden = true;
  document.getElementById("key-input").focus();
}

function setupKey() {
  keyState();
  document.getElementById("key-edit").addEventListener("click", openKeyForm);
  document.getElementById("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = document.getElementById("key-input").value.trim();
    if (value) sessionStorage.setItem(KEY, value);
    document.getElementById("key-input").value = "";
    document.getElementById("key-form").hidden = true;
    document.getElementById("key-edit").hidden = false;
    keyState();
    showBanner("");
    route();
  });
  document.getElementById("key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    document.getElementById("key-form").hidden = true;
    document.getElementById("key-edit").hidden = false;
    keyState();
    route();
  });
}

/* ------------------------------------------------------------------ routing */

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/incidents";
  const [path, search] = raw.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search || "") };
}

let generation = 0;   // a newer navigation makes an older one's late answers moot

async function route() {
  const { parts, params } = parseHash();
  const mine = ++generation;
  const section = parts[0] || "incidents";
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === section);
  const app = document.getElementById("app");
  app.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    let view;
    if (section === "incidents" && parts[1]) view = await incidentPage(parts[1], mine);
    else if (section === "noise") view = await noisePage(params);
    else if (section === "quality") view = await qualityPage(params);
    else if (section === "oncall") view = await oncallPage(params);
    else view = await incidentList(params);
    if (mine === generation && view) app.replaceChildren(view);
  } catch (err) {
    if (mine === generation) failed(err);
  }
}

/* ------------------------------------------------------------------ incident list */

async function incidentList(params) {
  const filters = {
    status: params.get("status") || "",
    kind: params.get("kind") || "incident",
    service: params.get("service") || "",
    offset: Number(params.get("offset") || 0),
  };
  const [page, services] = await Promise.all([
    api(`/incidents${query({ status: filters.status, kind: filters.kind, service: filters.service, limit: PAGE,
      offset: filters.offset })}`),
    api("/stats/noise").then((stats) => Object.keys(stats.by_service)).catch(() => []),
  ]);
  document.title = "Incidents · triage";

  const go = (changes) => {
    const next = { ...filters, offset: 0, ...changes };
    location.hash = `#/incidents${query({ status: next.status, kind: next.kind === "incident" ? "" : next.kind,
      service: next.service, offset: next.offset || "" })}`;
  };
  const select = (name, value, options) => h("select", { id: `f-${name}`, onchange: (ev) => go({ [name]: ev.target.value }) },
    options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
  const serviceInput = h("input", { id: "f-service", list: "services", value: filters.service, placeholder: "any service",
    onchange: (ev) => go({ service: ev.target.value.trim() }) });

  const bar = h("div", { class: "filters" },
    h("div", { class: "field" }, h("label", { for: "f-status" }, "Status"),
      select("status", filters.status, [["", "open and recent"], ["open", "open"], ["resolved", "resolved"], ["merged", "merged"]])),
    h("div", { class: "field" }, h("label", { for: "f-kind" }, "Kind"),
      select("kind", filters.kind, [["incident", "incidents (page)"], ["noise", "noise groups"], ["all", "both"]])),
    h("div", { class: "field" }, h("label", { for: "f-service" }, "Service"), serviceInput,
      h("datalist", { id: "services" }, services.filter((x) => x !== "(none)").map((x) => h("option", { value: x })))),
    h("div", { class: "muted count" }, `${num(page.total)} ${filters.kind === "noise" ? "noise group" : "incident"}${page.total === 1 ? "" : "s"}, newest first`));

  const rows = page.items.map((i) => h("tr", { "data-incident": i.id },
    h("td", {}, severity(i.severity)),
    h("td", { class: "title-cell" },
      h("a", { href: `#/incidents/${encodeURIComponent(i.id)}` }, i.title),
      h("div", { class: "why" }, h("span", { class: "mono" }, i.id),
        i.merged_into ? [" · merged into ", h("a", { href: `#/incidents/${encodeURIComponent(i.merged_into)}` }, i.merged_into)] : null,
        i.transient ? " · transient: resolved before its page was due" : null)),
    h("td", { class: "services" }, i.services.length ? i.services.map((x) => h("span", { class: "chip" }, x)) : h("span", { class: "muted" }, "—")),
    h("td", {}, status(i.status), " ", i.kind === "noise" ? kindBadge("noise") : null),
    h("td", { class: "num" }, num(i.event_count)),
    h("td", { class: "num" }, num(i.alert_count)),
    h("td", { class: "num" }, num(i.suppressed_count)),
    h("td", { class: "time" }, timeCell(i.opened_at)),
    h("td", { class: "time" }, i.last_paged_at ? h("span", { title: utc(i.last_paged_at) }, utc(i.last_paged_at, false))
      : h("span", { class: "muted" }, i.kind === "noise" ? "pages nobody" : "not paged"))));

  const table = page.items.length
    ? h("table", { id: "incidents" },
      h("thead", {}, h("tr", {}, h("th", {}, "Severity"), h("th", {}, "Incident"), h("th", {}, "Services"),
        h("th", {}, "Status"), h("th", { class: "num" }, "Events"), h("th", { class: "num" }, "Alerts"),
        h("th", { class: "num" }, "Duplicates"), h("th", {}, "Opened"), h("th", {}, "Last paged"))),
      h("tbody", {}, rows))
    : h("div", { class: "empty" }, "No incidents match these filters.");

  const pager = h("div", { class: "pager" },
    filters.offset > 0 ? h("button", { type: "button", class: "small ghost", onclick: () => go({ offset: Math.max(0, filters.offset - PAGE) }) }, "← Newer") : null,
    page.next_offset !== null ? h("button", { type: "button", class: "small ghost", onclick: () => go({ offset: page.next_offset }) }, "Older →") : null,
    page.total > PAGE ? h("span", { class: "muted" }, `${filters.offset + 1}–${Math.min(filters.offset + PAGE, page.total)} of ${num(page.total)}`) : null);

  return h("section", {}, h("h1", {}, "Incidents"), bar, h("div", { class: "panel" }, table, pager));
}

/* ------------------------------------------------------------------ incident detail */

const COMPONENTS = ["topology", "time", "text", "labels", "family"];

/* Each score component as value × weight, for a join and for the best candidate an opening turned down. */
function evidenceChips(evidence) {
  const source = evidence.components ? evidence : evidence.best_candidate;
  if (!source || !source.components) return null;
  const weights = evidence.weights || {};
  const chips = COMPONENTS.filter((c) => c in source.components && (weights[c] === undefined || weights[c] > 0))
    .map((c) => {
      const value = Number(source.components[c]);
      return h("span", { class: `chip ${value >= 0.75 ? "hi" : value < 0.25 ? "lo" : ""}`, "data-component": c,
        title: `${c}: ${value.toFixed(2)}, weight ${weights[c] !== undefined ? Number(weights[c]).toFixed(2) : "?"}` },
      `${c} ${value.toFixed(2)}`, weights[c] !== undefined ? h("span", { class: "w" }, ` ×${Number(weights[c]).toFixed(2)}`) : null);
    });
  const score = Number(source.score);
  const threshold = Number(evidence.threshold);
  const verdict = Number.isFinite(score) && Number.isFinite(threshold)
    ? h("span", { class: "chip" }, `score ${score.toFixed(2)} ${score >= threshold ? "≥" : "<"} ${threshold.toFixed(2)}`,
      evidence.best_candidate && !evidence.components ? h("span", { class: "w" }, ` vs ${evidence.best_candidate.incident}`) : null)
    : null;
  return h("div", { class: "evidence" }, chips, verdict);
}

const ACTIONS = { opened: "opened", attached: "joined", suppressed: "duplicate" };

function decisionLabel(m) {
  if (!m) return h("span", { class: "muted" }, "—");
  if (m.rule === "alert_resolved") return h("span", { class: "badge st-resolved" }, "resolve");
  if (m.rule === "merged" || m.rule === "split") return h("span", { class: "badge st-merged" }, m.rule);
  return h("span", { class: `badge ${m.action === "suppressed" ? "plain" : m.action === "opened" ? "kind-incident" : "sev-info"}` },
    ACTIONS[m.action] || m.action);
}

function eventRow(e, selected) {
  const m = e.membership;
  const box = h("input", { type: "checkbox", "aria-label": `select event ${e.event.id}`, checked: selected.has(e.event.id),
    onchange: (ev) => { if (ev.target.checked) selected.add(e.event.id); else selected.delete(e.event.id); selected.changed(); } });
  return h("tr", { "data-event": e.event.id, "data-rule": m ? m.rule : "" },
    h("td", {}, box),
    h("td", { class: "time" }, utc(e.event.occurred_at, false)),
    h("td", { class: "nowrap" }, h("span", { class: "badge plain" }, e.event.kind), " ", severity(e.event.severity)),
    h("td", {}, e.event.service || h("span", { class: "muted" }, e.event.host || "—")),
    h("td", {},
      h("div", {}, e.event.title, e.event.status === "resolved" ? h("span", { class: "muted" }, " (resolved)") : null),
      m ? h("div", { class: "why" }, h("span", { class: "sentence" }, m.explanation), m.notify ? h("span", { class: "chip" }, "made a page due") : null,
        evidenceChips(m.evidence)) : null),
    h("td", {}, decisionLabel(m)));
}

function pagesPanel(incident, pages) {
  const body = [];
  const first = pages.due.find((d) => d.first);
  const sentence = {
    paged: () => [h("b", {}, `${pages.due.length} page${pages.due.length === 1 ? "" : "s"} due`),
      first ? [" · the first at ", utc(first.occurred_at)] : null],
    held: () => [h("b", {}, "First page held"), " by the auto_pause parameter until ", utc(pages.page_due_at),
      ": if all its alerts resolve before then, nobody is paged."],
    transient: () => [h("b", {}, "Nobody was paged"), ": its alerts resolved before its first page was due (transient)."],
    unpaged: () => [h("b", {}, "No page was due"), " for this incident."],
    noise: () => [h("b", {}, "A noise group pages nobody"), " until an alert joins it."],
  }[pages.state]();
  body.push(h("div", { class: "pagestate" }, sentence));
  if (pages.due.length) {
    body.push(h("ol", { class: "pages" }, pages.due.map((d) => h("li", {},
      h("span", { class: "mono" }, utc(d.occurred_at, false)), " ", d.first ? h("span", { class: "badge kind-incident" }, "first page") : h("span", { class: "badge plain" }, "update"),
      " ", d.title))));
  }
  if (pages.deliveries.length) {
    body.push(h("table", { class: "deliveries" },
      h("thead", {}, h("tr", {}, h("th", {}, "Target"), h("th", {}, "Action"), h("th", {}, "Status"), h("th", {}, "Owed"),
        h("th", {}, "Sent / next try"), h("th", {}, "Why"))),
      h("tbody", {}, pages.deliveries.map((d) => h("tr", {},
        h("td", {}, d.target), h("td", {}, d.action),
        h("td", {}, h("span", { class: `badge ${d.status === "sent" ? "st-resolved" : d.status === "pending" ? "sev-warning" : d.status === "failed" ? "sev-critical" : "plain"}` }, d.status),
          d.attempts > 1 ? h("span", { class: "muted" }, ` ${d.attempts} tries`) : null),
        h("td", { class: "time" }, utc(d.owed_at, false)),
        h("td", { class: "time" }, d.sent_at ? utc(d.sent_at, false) : d.next_attempt_at ? `next ${utc(d.next_attempt_at, false)}` : "—"),
        h("td", {}, d.reason || h("span", { class: "muted" }, d.cause ? `owed by ${d.cause}` : "")))))));
  } else if (pages.state !== "noise") {
    body.push(h("p", { class: "muted" }, "Nothing was delivered: no page target (PagerDuty, webhook, Kafka topic) is configured, " +
      "or none was owed yet."));
  }
  return h("div", { class: "panel", id: "pages" }, h("h2", {}, "Pages"), body);
}

function triagePanel(incident) {
  const t = incident.triage;
  if (!t) return null;
  const pct = (x) => `${Math.round(x * 100)}%`;
  const why = (items) => h("span", { class: "muted" }, ` — ${items.join("; ")}`);
  // only http(s) links: a change's link comes from whoever sent the change
  const link = (url, text) => url && /^https?:\/\//i.test(url) ? h("a", { href: url, rel: "noreferrer" }, text) : text;
  return h("div", { class: "panel", id: "triage" }, h("h2", {}, "Triage"),
    h("p", {}, h("b", {}, "Owner team: "), t.owner_team || "—", t.owner_team_evidence ? h("span", { class: "muted" }, ` (${t.owner_team_evidence})`) : null),
    t.probable_cause.length ? [h("h3", {}, "Probable cause"), h("ol", { id: "probable-cause" }, t.probable_cause.map((c) =>
      h("li", {}, h("b", {}, c.component), h("span", { class: "badge plain" }, c.type), ` ${pct(c.confidence)}`, why(c.evidence))))] : null,
    t.recent_changes.length ? [h("h3", {}, "Recent changes"), h("ul", { id: "recent-changes" }, t.recent_changes.map((c) =>
      h("li", {}, link(c.link, c.summary), why([c.evidence]))))] : null,
    t.responders.length ? [h("h3", {}, "Responders"), h("ol", { id: "responders" }, t.responders.map((r) =>
      h("li", {}, h("b", {}, r.person), ` ${pct(r.confidence)}`, why(r.evidence))))] : null,
    t.remediations.length ? [h("h3", {}, "Remediations"), h("ol", { id: "remediations" }, t.remediations.map((r) =>
      h("li", {}, link(r.url, r.text), why([r.evidence]))))] : null,
    t.similar_incidents.length ? [h("h3", {}, "Similar incidents"), h("ul", { id: "similar-incidents" }, t.similar_incidents.map((x) =>
      h("li", {}, h("a", { href: `#/incidents/${encodeURIComponent(x.incident_id)}` }, x.title || x.incident_id),
        x.responder ? ` · resolved by ${x.responder}` : null, x.resolution_note ? ` · ${x.resolution_note}` : null, why(x.evidence))))] : null);
}

function suggestionsPanel(incident) {
  const similar = incident.similar_past_incidents || [];
  const responders = incident.suggested_responders || [];
  const fixes = incident.suggested_remediations || [];
  if (!similar.length && !responders.length && !fixes.length) {
    return h("div", { class: "panel", id: "suggestions" }, h("h2", {}, "Suggestions"),
      h("p", { class: "muted" }, "No similar past incident with a recorded resolution yet. Record who resolved this one " +
        "and how (below): later similar incidents will suggest it."));
  }
  return h("div", { class: "panel", id: "suggestions" }, h("h2", {}, "Suggestions"),
    responders.length ? h("p", {}, "Responders: ", responders.map((r) => h("span", { class: "chip" }, r.responder, h("span", { class: "w" }, ` ${r.score.toFixed(2)}`)))) : null,
    fixes.length ? h("ul", {}, fixes.map((f) => h("li", {}, f.remediation, h("span", { class: "muted" }, ` (from ${f.from_incident}, similarity ${f.similarity.toFixed(2)})`)))) : null,
    similar.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Similar past incident"), h("th", { class: "num" }, "Similarity"), h("th", {}, "Resolved by"), h("th", {}, "Fix"))),
      h("tbody", {}, similar.map((x) => h("tr", {},
        h("td", { class: "title-cell" }, h("a", { href: `#/incidents/${encodeURIComponent(x.incident_id)}` }, x.title)),
        h("td", { class: "num" }, x.similarity.toFixed(2)), h("td", {}, x.responder || "—"), h("td", {}, x.remediation || "—"))))) : null);
}

function authorField(id) {
  const input = h("input", { id, value: sessionStorage.getItem(AUTHOR) || "", placeholder: "your name", required: true, maxlength: 200,
    onchange: (ev) => sessionStorage.setItem(AUTHOR, ev.target.value.trim()) });
  return h("div", { class: "field" }, h("label", { for: id }, "Who"), input);
}

function notice(el, text, ok) {
  el.replaceChildren(h("div", { class: `notice ${ok ? "ok" : "err"}`, role: ok ? "status" : "alert" }, text));
}

function actionsPanel(incident, candidates, selected, reload) {
  const mergeNotice = h("div", { id: "merge-notice" });
  const chosen = new Set();
  const mergeButton = h("button", { type: "submit", id: "merge-submit", disabled: true }, "Merge into this incident");
  const list = candidates.length
    ? h("div", { class: "candidates", id: "merge-candidates" }, candidates.map((c) => h("label", {},
      h("input", { type: "checkbox", value: c.id, onchange: (ev) => {
        if (ev.target.checked) chosen.add(c.id); else chosen.delete(c.id);
        mergeButton.disabled = chosen.size === 0;
        mergeButton.textContent = chosen.size ? `Merge ${chosen.size} into this incident` : "Merge into this incident";
      } }),
      h("span", {}, severity(c.severity), " ", c.kind === "noise" ? [kindBadge("noise"), " "] : null, c.title,
        h("span", { class: "muted" }, ` · ${c.services.join(", ") || "no service"} · opened ${utc(c.opened_at)} · ${c.status}`)))))
    : h("p", { class: "muted" }, "No other incident of this correlation scope to merge.");
  const mergeReason = h("input", { id: "merge-reason", placeholder: "why (optional)", maxlength: 2000, size: 30 });
  const merge = h("form", { id: "merge-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const author = document.getElementById("merge-author").value.trim();
    if (!author) { notice(mergeNotice, "Say who merges (your name): it is recorded with the merge.", false); return; }
    sessionStorage.setItem(AUTHOR, author);
    mergeButton.disabled = true;
    try {
      await api(`/incidents/${encodeURIComponent(incident.id)}/merge`, { method: "POST",
        body: { incidents: [...chosen], author, reason: mergeReason.value.trim() } });
      await reload(`Merged ${[...chosen].join(", ")} into this incident.`);
    } catch (err) {
      mergeButton.disabled = false;
      notice(mergeNotice, explain(err, true), false);
    }
  } }, h("p", { class: "muted" }, "The same problem: their events, alerts and later events move here, their pages are resolved."),
  list, h("div", { class: "row" }, authorField("merge-author"), h("div", { class: "field" }, h("label", { for: "merge-reason" }, "Reason"), mergeReason), mergeButton), mergeNotice);

  const splitNotice = h("div", { id: "split-notice" });
  const splitButton = h("button", { type: "submit", id: "split-submit", disabled: true }, "Split selected events off");
  selected.changed = () => {
    splitButton.disabled = selected.size === 0;
    splitButton.textContent = selected.size ? `Split ${selected.size} selected event${selected.size === 1 ? "" : "s"} off` : "Split selected events off";
  };
  const splitReason = h("input", { id: "split-reason", placeholder: "why (optional)", maxlength: 2000, size: 30 });
  const split = h("form", { id: "split-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const author = document.getElementById("split-author").value.trim();
    if (!author) { notice(splitNotice, "Say who splits (your name): it is recorded with the split.", false); return; }
    sessionStorage.setItem(AUTHOR, author);
    splitButton.disabled = true;
    try {
      const created = await api(`/incidents/${encodeURIComponent(incident.id)}/split`, { method: "POST",
        body: { events: [...selected], author, reason: splitReason.value.trim() } });
      selected.clear();
      await reload("Split off into a new incident: ", created.id);
    } catch (err) {
      splitButton.disabled = false;
      notice(splitNotice, explain(err, true), false);
    }
  } }, h("p", { class: "muted" }, "Tick the events below that are another problem: they leave for a new incident."),
  h("div", { class: "row" }, authorField("split-author"), h("div", { class: "field" }, h("label", { for: "split-reason" }, "Reason"), splitReason), splitButton), splitNotice);

  const resolveNotice = h("div", { id: "resolve-notice" });
  const note = h("textarea", { id: "resolve-note", rows: 2, cols: 40, maxlength: 10000, placeholder: "what fixed it" });
  const resolve = h("form", { id: "resolve-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const responder = document.getElementById("resolve-author").value.trim();
    if (!responder) { notice(resolveNotice, "Say who resolved it.", false); return; }
    sessionStorage.setItem(AUTHOR, responder);
    try {
      await api(`/incidents/${encodeURIComponent(incident.id)}/resolution`, { method: "POST",
        body: { responder, note: note.value.trim() || null } });
      notice(resolveNotice, "Resolution recorded: similar incidents will suggest it.", true);
    } catch (err) {
      notice(resolveNotice, explain(err, true), false);
    }
  } }, h("p", { class: "muted" }, "Who resolved it and what fixed it: what later similar incidents suggest."),
  h("div", { class: "row" }, authorField("resolve-author"), h("div", { class: "field" }, h("label", { for: "resolve-note" }, "Fix"), note),
    h("button", { type: "submit", id: "resolve-submit" }, "Record resolution")), resolveNotice);

  const merged = incident.status === "merged";
  // Folded: reading comes first; the corrections are a click away.
  return h("details", { class: "panel actions", id: "actions" },
    h("summary", {}, h("h2", {}, "Correct the grouping, record the fix"),
      h("span", { class: "muted" }, " merge other incidents in, split events off, record who resolved it and how")),
    merged ? h("p", { class: "muted" }, "Merged into another incident: correct it there.") : h("div", { class: "cols" },
      h("div", {}, h("h3", {}, "Merge other incidents into this one"), merge),
      h("div", {}, h("h3", {}, "Split events off"), split),
      h("div", {}, h("h3", {}, "Record the resolution"), resolve)));
}

async function incidentPage(id, mine) {
  const [incident, pages, others] = await Promise.all([
    api(`/incidents/${encodeURIComponent(id)}?limit=${EVENTS_PAGE}`),
    api(`/incidents/${encodeURIComponent(id)}/pages`),
    api(`/incidents?kind=all&limit=200`).catch(() => ({ items: [] })),
  ]);
  document.title = `${incident.title} · triage`;
  const events = incident.events.slice();
  const selected = new Set();
  selected.changed = () => {};
  // Incidents before noise groups, the nearest in time first: the likeliest to be the same problem.
  const opened = new Date(incident.opened_at).getTime();
  const candidates = others.items.filter((o) => o.id !== incident.id && o.scope === incident.scope && o.status !== "merged")
    .sort((x, y) => (x.kind === "noise") - (y.kind === "noise")
      || Math.abs(new Date(x.opened_at) - opened) - Math.abs(new Date(y.opened_at) - opened));

  const reload = async (message, link) => {
    await route();
    if (mine !== generation - 1) return;
    const top = document.getElementById("detail-notice");
    if (top) notice(top, [message, link ? h("a", { href: `#/incidents/${encodeURIComponent(link)}` }, link) : null], true);
  };

  let showDuplicates = false;
  let kind = "";
  const tbody = h("tbody", {});
  const counts = h("span", { class: "muted" });
  const more = h("button", { type: "button", class: "small ghost", id: "events-more" }, "Load more events");
  const draw = () => {
    const shown = events.filter((e) => (showDuplicates || !e.membership || e.membership.action !== "suppressed") && (!kind || e.event.kind === kind));
    tbody.replaceChildren(...shown.map((e) => eventRow(e, selected)));
    const dups = events.filter((e) => e.membership && e.membership.action === "suppressed").length;
    counts.textContent = `${num(shown.length)} shown of ${num(events.length)} loaded (${num(incident.events_total)} in all; ${num(dups)} duplicates loaded${showDuplicates ? "" : ", hidden"})`;
    more.hidden = events.length >= incident.events_total;
  };
  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const next = await api(`/incidents/${encodeURIComponent(id)}?limit=${EVENTS_PAGE}&offset=${events.length}`);
      events.push(...next.events);
      draw();
    } catch (err) {
      showBanner(explain(err));
    }
    more.disabled = false;
  });
  const tabs = h("div", { class: "tabs" },
    h("label", {}, h("input", { type: "checkbox", id: "show-duplicates", onchange: (ev) => { showDuplicates = ev.target.checked; draw(); } }), " show duplicates"),
    h("select", { id: "event-kind", "aria-label": "event kind", onchange: (ev) => { kind = ev.target.value; draw(); } },
      [["", "all kinds"], ["alert", "alerts"], ["log", "logs"], ["span", "spans"]].map(([v, l]) => h("option", { value: v }, l))),
    counts);
  draw();

  const alertsFiring = incident.firing_alerts;
  const duration = (new Date(incident.resolved_at || incident.last_event_at) - new Date(incident.opened_at)) / 1000;
  const header = h("div", {},
    h("div", { class: "crumbs" }, h("a", { href: "#/incidents" }, "← Incidents")),
    h("h1", {}, incident.title),
    h("div", { class: "meta" }, severity(incident.severity), status(incident.status), kindBadge(incident.kind),
      incident.transient ? h("span", { class: "badge plain" }, "transient") : null,
      incident.merged_into ? h("span", {}, "merged into ", h("a", { href: `#/incidents/${encodeURIComponent(incident.merged_into)}` }, incident.merged_into)) : null,
      h("span", { class: "mono" }, incident.id),
      h("span", {}, "opened ", h("b", {}, utc(incident.opened_at)), ` (${ago(incident.opened_at)})`),
      incident.resolved_at ? h("span", {}, "resolved ", h("b", {}, utc(incident.resolved_at, false)), ` after ${span(duration)}`)
        : h("span", {}, "last event ", h("b", {}, utc(incident.last_event_at, false))),
      h("span", { class: "services" }, incident.services.map((x) => h("span", { class: "chip" }, x)))),
    h("div", { id: "detail-notice" }));
  const figures = h("div", { class: "figures" },
    [[incident.event_count, "events"], [incident.alert_count, "alerts"], [alertsFiring, "alerts still firing"],
      [incident.suppressed_count, "duplicates suppressed"], [pages.due.length, "pages due"]]
      .map(([n, l]) => h("div", { class: "figure" }, h("div", { class: "n" }, num(n)), h("div", { class: "l" }, l))));

  return h("section", { id: "incident", "data-id": incident.id }, header, figures,
    triagePanel(incident),
    h("div", { class: "grid2" }, pagesPanel(incident, pages), suggestionsPanel(incident)),
    actionsPanel(incident, candidates, selected, reload),
    h("div", { class: "panel", id: "events" }, h("h2", {}, "Events, and why each joined"), tabs,
      h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, h("span", { class: "sr-only" }, "select")), h("th", {}, "Time"), h("th", {}, "Kind"), h("th", {}, "Service"),
        h("th", {}, "Event, and why it is here"), h("th", {}, "Decision"))), tbody),
      h("div", { class: "pager" }, more)));
}

/* ------------------------------------------------------------------ noise over time */

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/* Grouped bars, one group per bucket, drawn as SVG. */
function barChart(points, series, bucket, title) {
  const width = 1100, height = 260, left = 56, right = 12, top = 12, bottom = 34;
  const plotW = width - left - right, plotH = height - top - bottom;
  const max = niceMax(Math.max(0, ...points.flatMap((p) => series.map((x) => p[x.key]))));
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    svg.append(s("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }),
      s("text", { x: left - 8, y: y + 4, "text-anchor": "end" }, num(Math.round((max * i) / 4 * 100) / 100)));
  }
  const n = Math.max(points.length, 1);
  const slot = plotW / n;
  const gap = Math.min(slot * 0.2, 16);
  const barW = Math.max(1, Math.min((slot - gap) / series.length, 72));   // few buckets: bars, not walls
  const every = Math.ceil(n / 12);
  points.forEach((p, i) => {
    const x0 = left + i * slot + (slot - barW * series.length) / 2;
    series.forEach((x, j) => {
      const value = p[x.key];
      const hgt = (plotH * value) / max;
      const rect = s("rect", { class: x.cls, x: x0 + j * barW, y: top + plotH - hgt, width: Math.max(barW - 1, 1), height: Math.max(hgt, value ? 1 : 0), "data-series": x.key },
        s("title", {}, `${label(p.start, bucket, true)}: ${num(value)} ${x.label}`));
      svg.append(rect);
      if (barW >= 26 && value) {
        svg.append(s("text", { class: "value", x: x0 + j * barW + barW / 2, y: top + plotH - hgt - 4, "text-anchor": "middle" }, num(value)));
      }
    });
    if (i % every === 0) {
      svg.append(s("text", { x: left + i * slot + slot / 2, y: height - 12, "text-anchor": "middle" }, label(p.start, bucket, false)));
    }
  });
  svg.append(s("line", { class: "axis", x1: left, x2: width - right, y1: top + plotH, y2: top + plotH }));
  return svg;
}

function label(iso, bucket, full) {
  const d = new Date(iso);
  const day = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  if (bucket === "day") return day;
  const hour = `${pad(d.getUTCHours())}:00`;
  return full || d.getUTCHours() === 0 ? `${day} ${hour}` : hour;
}

function legend(series) {
  return h("div", { class: "legend" }, series.map((x) => h("span", {}, h("span", { class: `sw ${x.cls}` }), x.label)));
}

function toInput(iso) { return iso ? iso.slice(0, 16) : ""; }
function fromInput(value) { return value ? `${value}:00Z` : ""; }

async function noisePage(params) {
  const filters = { bucket: params.get("bucket") || "hour", since: params.get("since") || "", until: params.get("until") || "" };
  const [series, stats] = await Promise.all([
    api(`/stats/noise/series${query(filters)}`),
    api(`/stats/noise${query({ since: filters.since, until: filters.until })}`),
  ]);
  document.title = "Noise · triage";
  const go = (changes) => { location.hash = `#/noise${query({ ...filters, ...changes })}`; };
  const bar = h("div", { class: "filters" },
    h("div", { class: "field" }, h("label", { for: "n-bucket" }, "Per"),
      h("select", { id: "n-bucket", onchange: (ev) => go({ bucket: ev.target.value }) },
        [["hour", "hour"], ["day", "day"]].map(([v, l]) => h("option", { value: v, selected: v === filters.bucket }, l)))),
    h("div", { class: "field" }, h("label", { for: "n-since" }, "From (UTC)"),
      h("input", { id: "n-since", type: "datetime-local", value: toInput(filters.since || series.since), onchange: (ev) => go({ since: fromInput(ev.target.value) }) })),
    h("div", { class: "field" }, h("label", { for: "n-until" }, "To (UTC)"),
      h("input", { id: "n-until", type: "datetime-local", value: toInput(filters.until || series.until), onchange: (ev) => go({ until: fromInput(ev.target.value) }) })),
    (filters.since || filters.until) ? h("button", { type: "button", class: "small ghost", onclick: () => go({ since: "", until: "" }) }, "All stored events") : null);

  const t = stats.total;
  const figures = h("div", { class: "figures" },
    [[num(t.events), "events in"], [num(t.duplicates_suppressed), "duplicates suppressed"], [num(t.incidents), "incidents opened"],
      [num(t.noise_groups), "noise groups (paged nobody)"], [num(t.pages), "pages"], [pct(t.compression), "compression (1 − incidents/events)"]]
      .map(([n, l]) => h("div", { class: "figure" }, h("div", { class: "n" }, n), h("div", { class: "l" }, l))));

  if (!series.points.length) {
    return h("section", {}, h("h1", {}, "Noise over time"), bar, h("div", { class: "panel empty" }, "No events stored in this window."));
  }
  const volume = [{ key: "events", label: "events in", cls: "s-events" }, { key: "duplicates_suppressed", label: "duplicates suppressed", cls: "s-dups" }];
  const people = [{ key: "incidents", label: "incidents opened", cls: "s-incidents" }, { key: "noise_groups", label: "noise groups", cls: "s-noise" },
    { key: "pages", label: "pages", cls: "s-pages" }];
  const per = filters.bucket === "day" ? "day" : "hour";
  const table = h("table", { id: "noise-table" },
    h("thead", {}, h("tr", {}, h("th", {}, per === "day" ? "Day (UTC)" : "Hour (UTC)"), h("th", { class: "num" }, "Events in"),
      h("th", { class: "num" }, "Duplicates"), h("th", { class: "num" }, "Incidents"), h("th", { class: "num" }, "Noise groups"),
      h("th", { class: "num" }, "Pages"), h("th", { class: "num" }, "Compression"))),
    h("tbody", {}, series.points.filter((p) => p.events).map((p) => h("tr", {}, h("td", { class: "time" }, label(p.start, filters.bucket, true)),
      h("td", { class: "num" }, num(p.events)), h("td", { class: "num" }, num(p.duplicates_suppressed)), h("td", { class: "num" }, num(p.incidents)),
      h("td", { class: "num" }, num(p.noise_groups)), h("td", { class: "num" }, num(p.pages)), h("td", { class: "num" }, pct(p.compression))))));
  return h("section", {}, h("h1", {}, "Noise over time"), bar, figures,
    h("div", { class: "panel", id: "chart-volume" }, h("h2", {}, `What came in, per ${per}`), legend(volume), barChart(series.points, volume, filters.bucket, `events in and duplicates per ${per}`)),
    h("div", { class: "panel", id: "chart-people" }, h("h2", {}, `What reached people, per ${per}`), legend(people), barChart(series.points, people, filters.bucket, `incidents, noise groups and pages per ${per}`)),
    h("div", { class: "panel" }, h("h2", {}, `${per === "day" ? "Days" : "Hours"} with events`), table));
}

/* ------------------------------------------------------------------ grouping quality, on-call */

/* The window filter the review pages share: from, to (UTC), and a reset. */
function windowFilters(prefix, filters, go, extra) {
  return h("div", { class: "filters" },
    extra || null,
    h("div", { class: "field" }, h("label", { for: `${prefix}-since` }, "From (UTC)"),
      h("input", { id: `${prefix}-since`, type: "datetime-local", value: toInput(filters.since), onchange: (ev) => go({ since: fromInput(ev.target.value) }) })),
    h("div", { class: "field" }, h("label", { for: `${prefix}-until` }, "To (UTC)"),
      h("input", { id: `${prefix}-until`, type: "datetime-local", value: toInput(filters.until), onchange: (ev) => go({ until: fromInput(ev.target.value) }) })),
    (filters.since || filters.until) ? h("button", { type: "button", class: "small ghost", onclick: () => go({ since: "", until: "" }) }, "All stored") : null);
}

const ratio = (x) => (x === null || x === undefined ? "—" : x.toFixed(3));

async function qualityPage(params) {
  const filters = { since: params.get("since") || "", until: params.get("until") || "" };
  const q = await api(`/stats/quality${query(filters)}`);
  document.title = "Grouping quality · triage";
  const go = (changes) => { location.hash = `#/quality${query({ ...filters, ...changes })}`; };
  const how = h("p", { class: "muted explain" },
    "Merges and splits are grouping labels. Over the events of every incident a responder merged or split, ",
    "their grouping now is the truth and triage's (the incident it decided, the corrections undone) is scored against it: ",
    "a merge says its incidents' events belong together (pairs triage missed: recall), a split that the events split off ",
    "do not belong with the rest (pairs triage joined wrongly: precision); the other pairs count as triage decided them.");
  const head = [h("h1", {}, "Grouping quality, from merges and splits"), windowFilters("q", filters, go), how];
  if (!q.total) {
    return h("section", { id: "quality" }, head, h("div", { class: "panel empty" },
      "No merges or splits of incidents in this window: nothing to score triage's grouping against yet.",
      q.incomplete ? ` (${q.incomplete} merge(s) recorded without their events are left out.)` : ""));
  }
  const t = q.total;
  const figures = h("div", { class: "figures" },
    [[num(q.merges), "merges"], [num(q.splits), "splits"], [num(t.events), "events in corrected incidents"],
      [ratio(t.precision), "pairwise precision"], [ratio(t.recall), "pairwise recall"],
      [ratio(t.bcubed_precision), "B-cubed precision"], [ratio(t.bcubed_recall), "B-cubed recall"]]
      .map(([n, l]) => h("div", { class: "figure" }, h("div", { class: "n" }, n), h("div", { class: "l" }, l))));
  const cells = (s) => [h("td", { class: "num" }, num(s.events)), h("td", { class: "num" }, num(s.incidents)),
    h("td", { class: "num" }, num(s.triage_groups)),
    h("td", { class: "num", title: "pairs together in both / responders' / triage's" },
      `${num(s.pairs.together_in_both)} / ${num(s.pairs.responders)} / ${num(s.pairs.triage)}`),
    h("td", { class: "num" }, ratio(s.precision)), h("td", { class: "num" }, ratio(s.recall)),
    h("td", { class: "num" }, ratio(s.bcubed_precision)), h("td", { class: "num" }, ratio(s.bcubed_recall))];
  const rows = q.weeks.flatMap((w) => [
    h("tr", { class: "week", "data-week": w.week }, h("td", {}, h("b", {}, `week of ${w.week}`)), h("td", { class: "muted" }, "all"), cells(w.total)),
    ...w.versions.map((v) => h("tr", { "data-version": v.parameters_version }, h("td", {}), h("td", {}, `v${v.parameters_version}`), cells(v)))]);
  const table = h("table", { id: "quality-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "Week (UTC)"), h("th", {}, "Parameters"), h("th", { class: "num" }, "Events"),
      h("th", { class: "num" }, "Incidents now"), h("th", { class: "num" }, "Triage's"), h("th", { class: "num" }, "Pairs"),
      h("th", { class: "num" }, "Precision"), h("th", { class: "num" }, "Recall"), h("th", { class: "num" }, "B³ precision"),
      h("th", { class: "num" }, "B³ recall"))),
    h("tbody", {}, rows));
  return h("section", { id: "quality" }, head, figures,
    h("div", { class: "panel" }, h("h2", {}, "Per week and parameters version"),
      h("p", { class: "muted" }, "An event counts in the week its group began, and under the parameters version its decision was taken with; ",
        "a week's first row holds all its events (pairs across versions too)."), table,
      q.incomplete ? h("p", { class: "muted" }, `${q.incomplete} merge(s) recorded without their events are left out.`) : null));
}

function duration(seconds) {
  return seconds === null || seconds === undefined ? "—" : span(seconds);
}

/* One figure: its value, and from how many incidents it comes (its source on hover). */
function oncallFigure(f, label, format) {
  return h("div", { class: "figure", title: f.source },
    h("div", { class: "n" }, format(f.value)), h("div", { class: "l" }, label),
    h("div", { class: "l muted" }, `${num(f.incidents)} incident${f.incidents === 1 ? "" : "s"}${f.lacking ? `; ${num(f.lacking)} lacked the data` : ""}`));
}

async function oncallPage(params) {
  const filters = { since: params.get("since") || "", until: params.get("until") || "", by: params.get("by") || "service" };
  const go = (changes) => { location.hash = `#/oncall${query({ ...filters, ...changes })}`; };
  const by = h("div", { class: "field" }, h("label", { for: "o-by" }, "Per"),
    h("select", { id: "o-by", onchange: (ev) => go({ by: ev.target.value }) },
      [["service", "service"], ["team", "team"]].map(([v, l]) => h("option", { value: v, selected: v === filters.by }, l))));
  const head = [h("h1", {}, "On-call"), windowFilters("o", filters, go, by)];
  let r;
  try {
    r = await api(`/stats/oncall${query(filters)}`);
  } catch (err) {
    if (err.status !== 422) throw err;
    return h("section", { id: "oncall" }, head, h("div", { class: "panel" }, h("p", {}, explain(err))));
  }
  document.title = "On-call · triage";
  const t = r.total;
  const figures = h("div", { class: "figures" },
    oncallFigure(t.mttd_s, "MTTD: first sign to page", duration), oncallFigure(t.mtta_s, "MTTA: page to acknowledged", duration),
    oncallFigure(t.mttr_s, "MTTR: page to resolved", duration), oncallFigure(t.alert_precision, "alert precision: pages acted on", (x) => (x === null ? "—" : pct(x))),
    h("div", { class: "figure" }, h("div", { class: "n" }, num(t.pages)), h("div", { class: "l" }, `pages, ${num(t.paged)} of ${num(t.incidents)} incidents paged`),
      h("div", { class: "l muted" }, `${num(t.transient)} held back as transient, ${num(t.held)} held now`)));
  const groups = h("table", { id: "oncall-groups" },
    h("thead", {}, h("tr", {}, h("th", {}, filters.by === "team" ? "Team" : "Service"), h("th", { class: "num" }, "Incidents"),
      h("th", { class: "num" }, "Paged"), h("th", { class: "num" }, "Pages"), h("th", { class: "num" }, "Transient"),
      h("th", { class: "num" }, "MTTD"), h("th", { class: "num" }, "MTTA"), h("th", { class: "num" }, "MTTR"), h("th", { class: "num" }, "Precision"))),
    h("tbody", {}, r.groups.map((g) => { const f = g.figures; return h("tr", { "data-key": g.key },
      h("td", {}, g.key), h("td", { class: "num" }, num(f.incidents)), h("td", { class: "num" }, num(f.paged)), h("td", { class: "num" }, num(f.pages)),
      h("td", { class: "num" }, num(f.transient)), h("td", { class: "num" }, duration(f.mttd_s.value)), h("td", { class: "num" }, duration(f.mtta_s.value)),
      h("td", { class: "num" }, duration(f.mttr_s.value)), h("td", { class: "num" }, f.alert_precision.value === null ? "—" : pct(f.alert_precision.value))); })));
  const people = r.pages_per_person.length ? h("table", { id: "oncall-people" },
    h("thead", {}, h("tr", {}, h("th", {}, "Week of (UTC)"), h("th", {}, "On-call person"), h("th", { class: "num" }, "Pages"), h("th", { class: "num" }, "Incidents"))),
    h("tbody", {}, r.pages_per_person.map((p) => h("tr", {}, h("td", {}, p.week), h("td", {}, p.person || h("span", { class: "muted" }, "unknown")),
      h("td", { class: "num" }, num(p.pages)), h("td", { class: "num" }, num(p.incidents))))))
    : h("div", { class: "empty" }, "No pages in this window.");
  const rules = r.noisy_rules.length ? h("table", { id: "oncall-rules" },
    h("thead", {}, h("tr", {}, h("th", {}, "Alert rule"), h("th", { class: "num" }, "Pages"),
      h("th", { class: "num", title: "pages of incidents nobody acknowledged, resolved, merged or split" }, "Not acted on"),
      h("th", { class: "num" }, "Incidents"), h("th", { class: "num", title: "incidents auto_pause held back: resolved in the pause" }, "Transient"))),
    h("tbody", {}, r.noisy_rules.map((n) => h("tr", {}, h("td", {}, n.rule), h("td", { class: "num" }, num(n.pages)),
      h("td", { class: "num" }, num(n.not_acted_on)), h("td", { class: "num" }, num(n.incidents)), h("td", { class: "num" }, num(n.transient))))))
    : h("div", { class: "empty" }, "No alert rule paged in this window.");
  const causes = r.recurring_causes.length ? h("table", { id: "oncall-causes" },
    h("thead", {}, h("tr", {}, h("th", {}, "Alert family"), h("th", {}, "Example"), h("th", { class: "num" }, "Incidents"),
      h("th", { class: "num" }, "Pages"), h("th", { class: "num" }, "Acted on"))),
    h("tbody", {}, r.recurring_causes.map((c) => h("tr", {}, h("td", { class: "mono" }, `family ${c.family}`), h("td", {}, c.example),
      h("td", { class: "num" }, num(c.incidents)), h("td", { class: "num" }, num(c.pages)), h("td", { class: "num" }, num(c.acted_on))))))
    : h("div", { class: "empty" }, r.families_version === null ? "No alert families fitted yet (triage families fit)."
      : "No alert family opened two incidents in this window.");
  return h("section", { id: "oncall" }, head, figures,
    h("p", { class: "muted explain" }, "Over the incidents opened in the window, from their first event, their pages and what PagerDuty ",
      "webhooks and the feedback API said about them; hover a figure for the events it comes from."),
    h("div", { class: "panel" }, h("h2", {}, filters.by === "team" ? "Per team" : "Per service (of the first alert)"), groups),
    h("div", { class: "grid2" },
      h("div", { class: "panel" }, h("h2", {}, "Pages per on-call person per week"), people,
        r.persons_lacking ? h("p", { class: "muted" }, `${num(r.persons_lacking)} paged incident(s) with nobody known to have been paged.`) : null),
      h("div", { class: "panel" }, h("h2", {}, "Noisiest alert rules"), rules)),
    h("div", { class: "panel" }, h("h2", {}, "Recurring causes (alert families)"), causes));
}

/* ------------------------------------------------------------------ start */

setupKey();
window.addEventListener("hashchange", route);
route();
