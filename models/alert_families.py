"""Recurring alert families: templates clustered by meaning, offline (HDBSCAN).

Not on the hot path. A periodic job (or a notebook) takes the templates a deployment
has seen with their embeddings, calls ``fit_families`` and hands the result to the
correlator, which then looks a template's family up in a dict: "Kubernetes pod crash
looping" and "Kubernetes Pod not healthy", or "[Triggered] Redis out of memory" and
"[Recovered] Redis out of memory", are one family even though their texts differ.

Pure functions and a frozen value: ``fit_families(texts, vectors) -> TemplateFamilies``,
``TemplateFamilies.family_of(text, vector)``, ``to_json()`` / ``from_json()``. HDBSCAN
finds the number of families itself and leaves outliers out (family ``None``); a text
not seen at fit time joins the family whose centroid it is nearest, when that is at
least ``assign_threshold`` similar.

A fit numbers its families 0, 1, … by their first text. A periodic refit calls
``aligned(previous, next_id)`` so that a family keeps its id from one fit to the next
(matched by the templates the two share) and a new family gets an id never used
before: decisions that quote a family id, and links to ``/families/{id}``, stay
meaningful across refits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TemplateFamilies", "fit_families"]

_FORMAT = "triage.template-families"


@dataclass(frozen=True)
class TemplateFamilies:
    members: dict[str, int]                       # template text -> family id
    centroids: np.ndarray = field(repr=False)     # (families, dim), normalised rows
    assign_threshold: float = 0.8
    version: str = ""
    # The family id of each centroid row; empty: row i is family i (a fresh fit).
    ids: tuple[int, ...] = ()

    def __len__(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def family_ids(self) -> list[int]:
        return list(self.ids) if self.ids else list(range(len(self)))

    def family_of(self, text: str, vector: np.ndarray | None = None) -> int | None:
        """The family of a template: learned at fit time, else the nearest centroid if
        similar enough, else ``None``."""
        family = self.members.get(text)
        if family is not None or vector is None or len(self) == 0:
            return family
        sims = self.centroids @ np.asarray(vector, dtype=np.float32)
        best = int(np.argmax(sims))
        if float(sims[best]) < self.assign_threshold:
            return None
        return self.ids[best] if self.ids else best

    def texts(self, family: int) -> list[str]:
        return sorted(t for t, f in self.members.items() if f == family)

    def aligned(self, previous: "TemplateFamilies | None", next_id: int = 0) -> "TemplateFamilies":
        """These families renumbered so that each keeps the id of the ``previous`` family
        it shares the most templates with (each old id used once, the largest overlaps
        first); the others get fresh ids from ``max(next_id, any id in previous + 1)``."""
        rows = self.family_ids
        new_texts: dict[int, set[str]] = {f: set() for f in rows}
        for text, family in self.members.items():
            new_texts[family].add(text)
        old_texts: dict[int, set[str]] = {}
        if previous is not None:
            for text, family in previous.members.items():
                old_texts.setdefault(family, set()).add(text)
            next_id = max([next_id, *(f + 1 for f in previous.family_ids)])
        pairs = sorted(((len(new_texts[n] & old), min(new_texts[n]) if new_texts[n] else "", n, o)
                        for n in rows for o, old in old_texts.items() if new_texts[n] & old),
                       key=lambda p: (-p[0], p[1], p[3]))
        mapping: dict[int, int] = {}
        taken: set[int] = set()
        for _, _, new, old in pairs:
            if new not in mapping and old not in taken:
                mapping[new] = old
                taken.add(old)
        for new in rows:   # rows are numbered by first text: fresh ids in that order too
            if new not in mapping:
                mapping[new] = next_id
                next_id += 1
        members = {text: mapping[family] for text, family in self.members.items()}
        return TemplateFamilies(members=members, centroids=self.centroids, assign_threshold=self.assign_threshold,
                                version=_digest(members), ids=tuple(mapping[f] for f in rows))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": _FORMAT, "version": self.version,
                               "assign_threshold": self.assign_threshold, "members": self.members,
                               "centroids": np.round(self.centroids, 5).tolist()}
        if self.ids:
            out["ids"] = list(self.ids)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TemplateFamilies":
        if data.get("format") != _FORMAT:
            raise ValueError("not a template families document")
        centroids = np.asarray(data["centroids"], dtype=np.float32)
        return cls(members={str(k): int(v) for k, v in data["members"].items()},
                   centroids=centroids.reshape(len(data["centroids"]), -1) if len(data["centroids"]) else
                   np.zeros((0, 0), dtype=np.float32),
                   assign_threshold=float(data["assign_threshold"]), version=str(data["version"]),
                   ids=tuple(int(i) for i in data.get("ids") or ()))


def _digest(members: dict[str, int]) -> str:
    return hashlib.blake2b(json.dumps(sorted(members.items())).encode(), digest_size=8).hexdigest()


def fit_families(texts: Sequence[str], vectors: np.ndarray, *, min_cluster_size: int = 2,
                 min_samples: int = 1, assign_threshold: float = 0.8) -> TemplateFamilies:
    """Cluster template embeddings (normalised rows of ``vectors``, one per text) with
    HDBSCAN. Deterministic for a given input; texts are sorted first so that the order
    they are given in does not matter."""
    if len(texts) != len(vectors):
        raise ValueError(f"{len(texts)} texts but {len(vectors)} vectors")
    if min_cluster_size < 2:
        raise ValueError("min_cluster_size must be at least 2")
    order = sorted(range(len(texts)), key=lambda i: texts[i])
    texts = [texts[i] for i in order]
    matrix = np.asarray(vectors, dtype=np.float64)[order] if len(order) else np.zeros((0, 1))
    labels = np.full(len(texts), -1)
    if len(texts) >= min_cluster_size:
        import hdbscan

        # On unit vectors, euclidean distance is a monotone function of cosine similarity.
        labels = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples,
                                 metric="euclidean", cluster_selection_method="leaf").fit(matrix).labels_
    members: dict[str, int] = {}
    centroids: list[np.ndarray] = []
    # Renumber families by their first text, so ids do not depend on HDBSCAN's internals.
    by_label: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        if label >= 0:
            by_label.setdefault(int(label), []).append(i)
    for family, rows in enumerate(sorted(by_label.values(), key=lambda rows: texts[rows[0]])):
        for i in rows:
            members[texts[i]] = family
        mean = matrix[rows].mean(axis=0)
        centroids.append((mean / (np.linalg.norm(mean) or 1.0)).astype(np.float32))
    dim = matrix.shape[1] if matrix.ndim == 2 else 0
    return TemplateFamilies(members=members,
                            centroids=np.stack(centroids) if centroids else np.zeros((0, dim), np.float32),
                            assign_threshold=assign_threshold, version=_digest(members))
