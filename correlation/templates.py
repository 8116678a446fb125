"""Log template mining: turn free-text log lines and alert titles into stable templates.

A template is the line with its variable parts replaced by ``<*>``
(``Invalid user <*> from <*>``); lines with one template are one kind of event.
The miner is in the Drain family (He et al., ICWS 2017): variable-looking parts are
masked first, then a fixed-depth prefix tree keyed by token count and the first
tokens narrows the search to a few candidate templates, the most similar candidate
above a threshold absorbs the line, and positions where they differ become ``<*>``.

Two additions over plain Drain, both aimed at the mistakes Drain makes most:

* **Word conflicts.** Two lines that differ in an ordinary *word* (``failure`` vs
  ``failures``, ``bytes`` vs ``values``, ``uid=`` vs ``pid=``) are almost always
  different events, while lines that differ in numbers or identifiers are usually the
  same event. So a word conflict keeps a line out of a template however similar the
  rest is, and only non-word differences are generalised.
* **Variety merges.** Some words *are* parameters (user names, service names). A
  position is taken to be one once ``variety`` (default 3) templates that agree
  everywhere else show different words there; they are then merged into one template
  with ``<*>`` at that position. Two values are not enough: two near-identical
  messages (``... initialization``/``... finalization``) are common in real code.
  ALL-CAPS words never merge this way, since they are usually enum constants such as
  states (``from NEW to RUNNING``) that tell events apart.

A merge retires template ids: the absorbed ids become aliases of the survivor, which
``resolve()`` follows. Ids are hashes of a template's first text, so they are
stable across processes and restarts, and two processes that first see the same line
give it the same id.

State is plain JSON, saved and loaded as bytes (``snapshot()``/``restore()``) by whoever
owns the miner: the store keeps each scope's snapshot in the same transaction as the
batch that taught it (``correlation_models``), so no learning outlives a rolled-back
batch. The miner is not thread-safe; use one per worker.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from triage.correlation.masking import _TOKEN_CACHE_MAX, PARAM, _mask_tokens, mask

__all__ = ["PARAM", "ChangeType", "TemplateInfo", "TemplateMatch", "TemplateMiner", "mask"]

ChangeType = Literal["created", "updated", "none"]

# ------------------------------------------------------------------ word conflicts
#
# A token's "head" is the word it starts with, when that word stands on its own:
# followed by the end of the token or by prose or key punctuation ("failure;",
# "uid=<*>", "LOGIN(uid=<*>)"), not glued to digits or identifier characters
# ("blk_<*>", "node-<*>", "an<*>"), which mark ids. Two tokens conflict when both
# have a head and the heads differ.

_HEAD_RE = re.compile(r"[^\w<]*([A-Za-z]+)(?:$|[^\w<\-/@$])")
_CAPS_RE = re.compile(r"[A-Z]{2,}")
_HEAD_CACHE: dict[str, str] = {}


def _head(token: str) -> str:
    head = _HEAD_CACHE.get(token)
    if head is None:
        found = _HEAD_RE.match(token)
        head = found.group(1) if found else ""
        if len(_HEAD_CACHE) >= _TOKEN_CACHE_MAX:
            _HEAD_CACHE.clear()
        _HEAD_CACHE[token] = head
    return head


# -------------------------------------------------------------------- public types


@dataclass(frozen=True, slots=True)
class TemplateMatch:
    """The template a line belongs to. ``change_type`` says what learning it did:
    ``created`` a new template, ``updated`` an existing one (generalised or merged),
    or ``none``."""

    template_id: str
    template: str
    change_type: ChangeType


@dataclass(frozen=True, slots=True)
class TemplateInfo:
    template_id: str
    template: str
    size: int  # lines learned into it, including those of templates merged into it


# ------------------------------------------------------------------------- the miner


class _Cluster:
    __slots__ = ("id", "tokens", "heads", "template", "size", "path")

    def __init__(self, cid: str, tokens: list[str], size: int, path: tuple[str, ...]) -> None:
        self.id = cid
        self.size = size
        self.path = path  # the tree keys leading to its leaf, kept for restore()
        self.tokens = tokens
        self.heads = [_head(t) for t in tokens]
        self.template = " ".join(tokens)

    def set_tokens(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.heads = [_head(t) for t in tokens]
        self.template = " ".join(tokens)


class _Node:
    __slots__ = ("children", "clusters")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.clusters: list[_Cluster] = []


_FORMAT = "triage.template-miner"
_VERSION = 1
_LINE_CACHE_MAX = 1 << 16


class TemplateMiner:
    """Online log template miner (Drain family); see the module docstring.

    ``add()`` (alias ``learn_one()``) learns from a line and returns its template;
    ``match()`` only looks a line up. Defaults are one configuration for all log
    sources: ``depth`` leading tokens key the prefix tree, ``sim_threshold`` is the
    share of positions a line must share with a template, ``variety`` distinct
    words at one position make it a parameter, ``max_children`` bounds a tree
    node's fan-out (further tokens share its ``<*>`` child).
    """

    def __init__(
        self,
        *,
        depth: int = 2,
        sim_threshold: float = 0.5,
        variety: int = 3,
        max_children: int = 100,
    ) -> None:
        if depth < 0 or variety < 2 or max_children < 1 or not 0.0 <= sim_threshold <= 1.0:
            raise ValueError("need depth >= 0, variety >= 2, max_children >= 1, 0 <= sim_threshold <= 1")
        self.depth = depth
        self.sim_threshold = sim_threshold
        self.variety = variety
        self.max_children = max_children
        self._reset()

    def _reset(self) -> None:
        self._roots: dict[int, _Node] = {}
        self._clusters: dict[str, _Cluster] = {}   # live templates, in creation order
        self._aliases: dict[str, str] = {}         # merged-away id -> the id it joined
        # masked line -> template id: repeats skip the tree (ids may be stale aliases)
        self._line_cache: dict[str, str] = {}

    # ---------------------------------------------------------------- learning

    def add(self, text: str, masked: str | None = None) -> TemplateMatch:
        """Learn from one line and return the template it now belongs to. ``masked``:
        ``mask(text)``, when it was computed beforehand (in another process)."""
        tokens: list[str] | None = None
        if masked is None:
            masked_tokens = tokens = _mask_tokens(text)
            key = " ".join(masked_tokens)
        else:
            key = masked
        cached = self._line_cache.get(key)
        if cached is not None:
            cluster = self._clusters[self.resolve(cached)]
            cluster.size += 1
            return TemplateMatch(cluster.id, cluster.template, "none")
        if tokens is None:   # masked tokens hold no space, and none is empty
            tokens = key.split(" ") if key else []

        path, node = self._route(tokens)
        heads = [_head(t) for t in tokens]
        best, near = self._search(node, tokens, heads)
        if best is not None:
            cluster = best
            cluster.size += 1
            merged = [a if a == b else PARAM for a, b in zip(cluster.tokens, tokens)]
            change: ChangeType = "none"
            if merged != cluster.tokens:
                cluster.set_tokens(merged)
                change = "updated"
        else:
            survivor = self._variety_merge(node, near, tokens)
            if survivor is not None:
                cluster, change = survivor, "updated"
            else:
                cluster = _Cluster(self._new_id(key), list(tokens), 1, path)
                node.clusters.append(cluster)
                self._clusters[cluster.id] = cluster
                change = "created"
        if len(self._line_cache) >= _LINE_CACHE_MAX:
            self._line_cache.clear()
        self._line_cache[key] = cluster.id
        return TemplateMatch(cluster.id, cluster.template, change)

    learn_one = add

    def _route(self, tokens: list[str]) -> tuple[tuple[str, ...], _Node]:
        """The leaf for a new line, creating the path as needed."""
        n = len(tokens)
        node = self._roots.get(n)
        if node is None:
            node = self._roots[n] = _Node()
        path: list[str] = [str(n)]
        # A line is never keyed by all its tokens: then two one-word lines, or two
        # two-word lines differing in the second word, could never meet.
        for token in tokens[: min(self.depth, n - 1)]:
            key = PARAM if PARAM in token else token
            child = node.children.get(key)
            if child is None:
                if len(node.children) >= self.max_children:
                    key = PARAM
                    child = node.children.get(key)
                if child is None:
                    child = node.children[key] = _Node()
            path.append(key)
            node = child
        return tuple(path), node

    def _search(
        self, node: _Node, tokens: list[str], heads: list[str]
    ) -> tuple[_Cluster | None, list[tuple[_Cluster, int, int]]]:
        """The most similar template without a word conflict, if similar enough,
        and the templates with exactly one conflict (position, shared constants)."""
        n = len(tokens)
        needed = self.sim_threshold * n
        best: _Cluster | None = None
        best_same = -1
        near: list[tuple[_Cluster, int, int]] = []
        for cluster in node.clusters:
            same = constants = 0
            conflict = -1
            conflicts = 0
            for i, (a, b) in enumerate(zip(cluster.tokens, tokens)):
                if a == b:
                    same += 1
                    if PARAM not in a:
                        constants += 1
                elif a == PARAM:
                    same += 1
                else:
                    ha = cluster.heads[i]
                    if ha and heads[i] and ha != heads[i]:
                        conflicts += 1
                        if conflicts > 1:
                            break
                        conflict = i
            if conflicts == 0:
                if same > best_same:
                    best, best_same = cluster, same
            elif conflicts == 1:
                near.append((cluster, conflict, constants))
        if best is not None and best_same >= needed:
            return best, near
        return None, near

    def _variety_merge(
        self, node: _Node, near: list[tuple[_Cluster, int, int]], tokens: list[str]
    ) -> _Cluster | None:
        """Merge templates that differ from the line in one word only, at the same
        position, once that position has shown ``variety`` different words."""
        if not near:
            return None
        n = len(tokens)
        by_position: dict[int, list[_Cluster]] = {}
        for cluster, position, constants in near:
            # The rest must be similar enough and share at least one real word:
            # otherwise any set of one-word lines would collapse into "<*>".
            if constants >= 1 and self._similar_apart_from(cluster, tokens, position, n):
                by_position.setdefault(position, []).append(cluster)
        for position, members in by_position.items():
            values = {c.tokens[position] for c in members}
            values.add(tokens[position])
            if len(values) < self.variety:
                continue
            if all(_CAPS_RE.fullmatch(_head(v)) for v in values):
                continue
            survivor = members[0]  # the oldest: leaf order is creation order
            merged = list(survivor.tokens)
            merged[position] = PARAM
            for other in (*(c.tokens for c in members[1:]), tokens):
                merged = [a if a == b else PARAM for a, b in zip(merged, other)]
            for other_cluster in members[1:]:
                survivor.size += other_cluster.size
                node.clusters.remove(other_cluster)
                del self._clusters[other_cluster.id]
                self._aliases[other_cluster.id] = survivor.id
            survivor.size += 1
            survivor.set_tokens(merged)
            return survivor
        return None

    def _similar_apart_from(self, cluster: _Cluster, tokens: list[str], position: int, n: int) -> bool:
        same = sum(
            1 for i, (a, b) in enumerate(zip(cluster.tokens, tokens))
            if i == position or a == b or a == PARAM
        )
        return same >= self.sim_threshold * n

    def _new_id(self, template: str) -> str:
        base = "t" + hashlib.blake2b(template.encode("utf-8"), digest_size=8).hexdigest()
        cid, suffix = base, 1
        while cid in self._clusters or cid in self._aliases:
            suffix += 1
            cid = f"{base}-{suffix}"
        return cid

    # ----------------------------------------------------------------- reading

    def match(self, text: str) -> TemplateMatch | None:
        """The learned template that covers ``text`` (every constant token equal),
        or None. Learns nothing. Tries the line's own tree branch first, then the
        ``<*>`` branches, since a template may have been filed under either."""
        tokens = _mask_tokens(text)
        cached = self._line_cache.get(" ".join(tokens))
        if cached is not None:
            cluster = self._clusters[self.resolve(cached)]
            return TemplateMatch(cluster.id, cluster.template, "none")
        root = self._roots.get(len(tokens))
        if root is None:
            return None
        prefix = tokens[: min(self.depth, len(tokens) - 1)]
        for node in self._leaves(root, prefix):
            best: _Cluster | None = None
            best_constants = -1
            for cluster in node.clusters:
                constants = 0
                for a, b in zip(cluster.tokens, tokens):
                    if a == b:
                        constants += a != PARAM
                    elif a != PARAM:
                        break
                else:
                    if constants > best_constants:
                        best, best_constants = cluster, constants
            if best is not None:
                return TemplateMatch(best.id, best.template, "none")
        return None

    def _leaves(self, node: _Node, prefix: list[str]) -> Iterator[_Node]:
        if not prefix:
            yield node
            return
        token, rest = prefix[0], prefix[1:]
        if PARAM not in token and token in node.children:
            yield from self._leaves(node.children[token], rest)
        if PARAM in node.children:
            yield from self._leaves(node.children[PARAM], rest)

    def resolve(self, template_id: str) -> str:
        """The live id for ``template_id``: itself, or the template it was merged into."""
        root = template_id
        while root in self._aliases:
            root = self._aliases[root]
        while template_id != root:  # path compression: later look-ups are one step
            following = self._aliases[template_id]
            self._aliases[template_id] = root
            template_id = following
        return root

    def templates(self) -> list[TemplateInfo]:
        """The live templates, oldest first."""
        return [TemplateInfo(c.id, c.template, c.size) for c in self._clusters.values()]

    def __len__(self) -> int:
        return len(self._clusters)

    # ------------------------------------------------------------- persistence

    def snapshot(self) -> bytes:
        """The whole learned state (and the settings it was learned with) as JSON."""
        state: dict[str, Any] = {
            "format": _FORMAT,
            "version": _VERSION,
            "config": {
                "depth": self.depth,
                "sim_threshold": self.sim_threshold,
                "variety": self.variety,
                "max_children": self.max_children,
            },
            "templates": [
                {"id": c.id, "tokens": c.tokens, "size": c.size, "path": list(c.path)}
                for c in self._clusters.values()
            ],
            "aliases": self._aliases,
        }
        return json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def restore(self, state: bytes) -> None:
        """Replace the learned state with a ``snapshot()``, settings included:
        templates were learned under those settings and keep their meaning only
        with them. Raises ``ValueError`` on anything else, leaving the miner as it was."""
        try:
            data = json.loads(state.decode("utf-8"))
            if not isinstance(data, dict) or data.get("format") != _FORMAT:
                raise ValueError("not a template miner snapshot")
            if data.get("version") != _VERSION:
                raise ValueError(f"unsupported template miner snapshot version {data.get('version')!r}")
            config = data["config"]
            settings = (
                int(config["depth"]), float(config["sim_threshold"]),
                int(config["variety"]), int(config["max_children"]),
            )
            roots: dict[int, _Node] = {}
            clusters: dict[str, _Cluster] = {}
            for item in data["templates"]:
                path = tuple(str(p) for p in item["path"])
                node = roots.setdefault(int(path[0]), _Node())
                for key in path[1:]:
                    node = node.children.setdefault(key, _Node())
                tokens = [str(t) for t in item["tokens"]]
                cluster = _Cluster(str(item["id"]), tokens, int(item["size"]), path)
                node.clusters.append(cluster)  # snapshot order is creation order
                clusters[cluster.id] = cluster
            aliases = {str(k): str(v) for k, v in data["aliases"].items()}
        except (KeyError, TypeError, IndexError, AttributeError, UnicodeDecodeError) as error:
            raise ValueError(f"malformed template miner snapshot: {error!r}") from error
        self.depth, self.sim_threshold, self.variety, self.max_children = settings
        self._reset()
        self._roots, self._clusters, self._aliases = roots, clusters, aliases
