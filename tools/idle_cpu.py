"""The CPU an idle consumer costs: one consumer (the service's, as `triage consume` builds it
on the embedded defaults) on an embedded broker with nothing to read, for --seconds; prints
its process's CPU time as a share of one core (docs/benchmarks.md, "A poll that slept").

    python tools/idle_cpu.py [--seconds 20]

Settings come from the environment as for the service (TRIAGE_KAFKA_POLL_TIMEOUT_MS, ...).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from triage.broker import EmbeddedBroker
from triage.evaluation.bench import _against
from triage.service import Runtime
from triage.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="triage-idle-") as tmp, EmbeddedBroker() as broker:
        runtime = Runtime.build(_against(Settings(), broker, Path(tmp)))
        consumer = runtime.make_consumer()
        while not consumer.totals.assigned:   # group join is start-up, not idling
            consumer.poll_once()
        thread = threading.Thread(target=consumer.run, args=(runtime.stop,))
        thread.start()
        time.sleep(2)
        cpu, wall = time.process_time(), time.monotonic()
        time.sleep(args.seconds)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        runtime.stop.set()
        thread.join(30)
        runtime.close()
    print(f"idle consumer: {cpu:.2f} s of CPU over {wall:.1f} s, {100 * cpu / wall:.1f} % of a core")


if __name__ == "__main__":
    main()
