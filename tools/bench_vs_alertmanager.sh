#!/bin/sh
# Alertmanager 0.25's intake and triage's bench, back to back, and their ratio.
#
#   tools/bench_vs_alertmanager.sh [EVENTS [BENCH OPTIONS...]]   (default 100000; from the repository)
#
# e.g. `tools/bench_vs_alertmanager.sh 100000 --correlator-process`.
#
# Alertmanager: fresh storage in a temporary directory, clustering off, a route to a
# receiver that sends nothing; POST /api/v2/alerts in batches of 1,000 from one client
# (tools/alertmanager_intake.py). Then `triage bench --events EVENTS --json` (its database
# from TRIAGE_DATABASE_URL, else its own SQLite file). The machine is shared: only a ratio
# measured in one run means anything. ALERTMANAGER overrides the binary's path.
set -eu
EVENTS=${1:-100000}
[ $# -gt 0 ] && shift
AM=${ALERTMANAGER:-/usr/bin/prometheus-alertmanager}
PY=${PYTHON:-.venv/bin/python}
TRIAGE=${TRIAGE:-.venv/bin/triage}
TMP=$(mktemp -d)
AM_PID=
cleanup() {
    if [ -n "$AM_PID" ]; then kill "$AM_PID" 2>/dev/null || true; wait "$AM_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$TMP/alertmanager.yml" <<EOF
route:
  receiver: "null"
receivers:
  - name: "null"
EOF
"$AM" --config.file="$TMP/alertmanager.yml" --storage.path="$TMP/data" \
    --web.listen-address="127.0.0.1:$PORT" --cluster.listen-address= --log.level=warn \
    >"$TMP/alertmanager.log" 2>&1 &
AM_PID=$!
i=0
until $PY -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/-/ready', timeout=1)" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then echo "Alertmanager did not become ready:" >&2; cat "$TMP/alertmanager.log" >&2; exit 1; fi
    sleep 0.1
done
AM_JSON=$($PY tools/alertmanager_intake.py --url "http://127.0.0.1:$PORT" --alerts "$EVENTS" --batch 1000 --pid "$AM_PID")
kill "$AM_PID"; wait "$AM_PID" 2>/dev/null || true; AM_PID=
echo "alertmanager: $AM_JSON"

TRIAGE_JSON=$("$TRIAGE" bench --events "$EVENTS" "$@" --json 2>/dev/null | tail -n 1)
echo "triage: $TRIAGE_JSON"

$PY - "$AM_JSON" "$TRIAGE_JSON" <<'EOF'
import json, sys
am, tr = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({
    "alertmanager_alerts_per_s": am["alerts_per_s"],
    "alertmanager_cpu_us_per_alert": am["alertmanager_cpu_us_per_alert"],
    "triage_events_per_s": tr["end_to_end_events_per_s"],
    "triage_cpu_us_per_event": tr["cpu_us_per_event"],
    "triage_database": tr["database"],
    "triage_correlator_process": tr.get("correlator_process", False),
    "triage_correlating_process_cpu_us_per_event": tr.get("correlating_process_cpu_us_per_event", tr["cpu_us_per_event"]),
    "ratio_events_per_s": round(tr["end_to_end_events_per_s"] / am["alerts_per_s"], 3),
    "ratio_cpu_per_event": round(tr["cpu_us_per_event"] / am["alertmanager_cpu_us_per_alert"], 2)
    if am["alertmanager_cpu_us_per_alert"] else None,
}))
EOF
