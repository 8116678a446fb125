"""Alertmanager's intake rate: POST /api/v2/alerts in batches, from one client.

    python tools/alertmanager_intake.py --url http://127.0.0.1:9093 --alerts 100000 --batch 1000 --pid PID

Short synthetic alerts (alert name, service, instance, severity; an annotation), the
same shape of storm as ``triage bench``: 1 % distinct alerts, each sent again and again
(Alertmanager merges a repeat into the alert it holds). The request bodies are built
before the clock starts, and the client keeps one connection open, so what is timed is
Alertmanager taking alerts in. Prints one JSON object: ``alerts_per_s``, ``seconds``
and, given Alertmanager's ``--pid``, its CPU per alert (``/proc``)."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

_TICKS = os.sysconf("SC_CLK_TCK")
SERVICES = ["frontend", "cartservice", "checkoutservice", "currencyservice", "emailservice", "paymentservice",
            "productcatalogservice", "recommendationservice", "shippingservice", "adservice", "redis-cart"]


def cpu_s(pid: int | None) -> float:
    if not pid:
        return 0.0
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def bodies(alerts: int, batch: int, unique_share: float, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    distinct = max(1, int(alerts * unique_share))
    # All in the past: Alertmanager refuses an alert that starts after the end it gives
    # it (now + resolve_timeout).
    spacing = min(timedelta(milliseconds=10), timedelta(minutes=15) / alerts)
    start = datetime.now(timezone.utc) - timedelta(minutes=16)
    out: list[bytes] = []
    for first in range(0, alerts, batch):
        docs = []
        for i in range(first, min(alerts, first + batch)):
            t = rng.randrange(distinct)
            service = SERVICES[t % len(SERVICES)]
            docs.append({
                "labels": {"alertname": f"Alert{t}", "service": service, "instance": f"node-{t % 6}:9100",
                           "severity": "critical"},
                "annotations": {"summary": f"Alert{t} on {service}"},
                "startsAt": (start + spacing * i).isoformat(),
                "generatorURL": "http://prometheus.example/graph",
            })
        out.append(json.dumps(docs).encode())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:9093")
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--unique-share", type=float, default=0.01)
    parser.add_argument("--pid", type=int, default=None, help="Alertmanager's process id, for its CPU time")
    args = parser.parse_args()
    payloads = bodies(args.alerts, args.batch, args.unique_share)
    where = urlsplit(args.url)
    conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port or 80, timeout=60)
    headers = {"Content-Type": "application/json"}
    cpu_before, started = cpu_s(args.pid), time.perf_counter()
    for body in payloads:
        conn.request("POST", "/api/v2/alerts", body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
        if response.status != 200:
            raise SystemExit(f"Alertmanager answered {response.status}: {answer[:300]!r}")
    seconds = time.perf_counter() - started
    used = cpu_s(args.pid) - cpu_before
    conn.close()
    print(json.dumps({"alerts": args.alerts, "batch": args.batch, "unique_share": args.unique_share,
                      "alerts_per_s": round(args.alerts / seconds), "seconds": round(seconds, 2),
                      "alertmanager_cpu_s": round(used, 2),
                      "alertmanager_cpu_us_per_alert": round(used / args.alerts * 1e6, 1) if args.pid else None}))


if __name__ == "__main__":
    main()
