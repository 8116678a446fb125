"""How fast MiniLM embeds template texts, as the engine calls it: new texts in bulk (a
fresh deployment's first storm, a history replay) and one new text alone (a new template
in a live stream, on the path of the batch that brought it). docs/benchmarks.md, "1 %
unique templates".

    HF_HUB_OFFLINE=1 python tools/embed_rate.py [--texts 400]

The texts are the distinct titles and bodies of the bundled storm (real lengths); each
figure is the median of three runs on a cold cache.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time
from importlib.resources import files

from triage.models.embedder import MiniLMEmbedder


def texts(limit: int) -> list[str]:
    found: dict[str, None] = {}
    with gzip.open(files("triage") / "data" / "sample_storm.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            for field in ("title", "body"):
                if isinstance(doc.get(field), str) and doc[field]:
                    found.setdefault(doc[field], None)
    return list(found)[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=400)
    args = parser.parse_args()
    sample = texts(args.texts)
    bulk, single = [], []
    for _ in range(3):
        embedder = MiniLMEmbedder()   # a cold cache each time
        embedder.warm()
        start = time.perf_counter()
        embedder.embed(sample)
        bulk.append(len(sample) / (time.perf_counter() - start))
        start = time.perf_counter()
        for text in sample[:30]:
            embedder.embed([text + " (alone)"])   # not cached yet: the model runs for it
        single.append((time.perf_counter() - start) / 30 * 1000)
    print(json.dumps({"texts": len(sample), "bulk_texts_per_s": round(statistics.median(bulk)),
                      "one_text_ms": round(statistics.median(single), 1)}))


if __name__ == "__main__":
    main()
