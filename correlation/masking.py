"""Masking: the variable parts of a log line or alert title (numbers with units, hex and
UUIDs, IPs with ports, MACs, dates and times, URLs, e-mails, paths, Kubernetes pod
names, booleans and null, ``key="quoted values"``) replaced by ``<*>``.

Masking runs before the template miner compares anything (``triage.correlation.templates``),
so that its tree and its similarity only ever see the fixed skeleton of a message. Every
rule targets a value format that is common across software (not any one log source), and
a whole match becomes one ``<*>`` so that, e.g., an IP with its port or a date with its
time stays one token.
"""

from __future__ import annotations

import re

__all__ = ["PARAM", "mask"]

PARAM = "<*>"

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
_CLOCK = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?"

# key="quoted value": a quoted field value may contain spaces ("View Lock"), which
# would otherwise change the token count from one line to the next. The only rule
# that can span whitespace, so it is the only one applied to the whole line.
_QUOTED_RE = re.compile(r"(?<==)(?:\"[^\"]*\"|'[^']*')")

_HEX = r"[0-9a-fA-F]"
# Kubernetes generated names use a vowel-free alphabet for their random suffixes.
_K8S = r"[bcdfghjklmnpqrstvwxz2456789]"
_UNITS = r"(?:[KMGTP]i?B|[KMGTP]|B|bytes|ms|us|ns|s|sec|secs|min|mins|h|d|%)"

# Patterns for one whitespace-separated token, tried left to right at each position.
# Repetitions that could run over a long token are bounded, and patterns that scan
# ahead start only where a run of their characters starts, so a pathological token
# costs linear time rather than quadratic.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # one DNS label
_TOKEN_PATTERNS = (
    r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}://\S+",          # URL
    rf"(?<![\w.+-])[\w.+-]{{1,64}}@{_LABEL}(?:\.{_LABEL}){{1,8}}",     # e-mail
    rf"\b{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}\b",  # UUID
    rf"\b{_HEX}{{2}}(?:[:-]{_HEX}{{2}}){{5}}\b",                        # MAC address
    # IPv6, full or "::"-compressed; the digit look-ahead spares words like "dead:beef"
    rf"(?<![\w:])(?=[\w:]{{0,39}}\d)(?:{_HEX}{{1,4}}:){{7}}{_HEX}{{1,4}}(?![\w:])",
    rf"(?<![\w:])(?=[\w:]{{0,39}}\d)(?:{_HEX}{{1,4}}:){{1,6}}:(?:{_HEX}{{1,4}}(?::{_HEX}{{1,4}}){{0,6}})?(?![\w:])",
    r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b",                        # IPv4[:port]
    rf"\b\d{{4}}-\d{{2}}-\d{{2}}(?:T{_CLOCK}(?:Z|[+-]\d{{2}}:?\d{{2}})?)?\b",  # ISO date
    rf"\b\d{{1,2}}/{_MONTH}/\d{{4}}(?::{_CLOCK})?(?: [+-]\d{{4}})?",  # access-log date
    rf"\b{_CLOCK}\b",                                                  # time of day
    rf"\b0[xX]{_HEX}+\b",                                              # 0x hex
    # bare hex ids (hashes, object addresses): long enough and mixing digits and
    # letters, so that neither plain numbers nor words like "deadbeef" qualify
    rf"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F]){_HEX}{{6,}}\b",
    # host names under a common top-level or site-local domain; a closed list,
    # since any dotted name would also swallow Java classes and config keys
    rf"(?<![\w.-])(?:{_LABEL}\.){{1,8}}"
    r"(?:com|net|org|edu|gov|mil|int|io|info|biz|local|localdomain|lan|internal|arpa)"
    r"(?![\w-]|\.\w)",
    # Kubernetes pods: <deployment>-<replicaset hash>-<pod suffix>, or a
    # daemonset's <name>-<suffix>; a digit is required to spare hyphenated words
    rf"(?<![\w-])[a-z][a-z0-9-]{{0,62}}-(?=[a-z0-9-]{{0,16}}\d){_K8S}{{5,10}}-{_K8S}{{5}}(?![\w-])",
    rf"(?<![\w-])[a-z][a-z0-9-]{{0,62}}-(?=[a-z]{{0,4}}\d){_K8S}{{5}}(?![\w-])",
    r"(?<![\w./])(?:/[\w.@%+~:-]+){2,}/?",                              # unix path
    r"\b[A-Za-z]:\\[^\s]*",                                            # windows path
    r"\b(?i:true|false|null|nil|none)\b",                              # literals
    # a number, with its sign when the sign is not a hyphen inside a word, and its
    # unit when one is glued on ("10ms", "3.5GB", "93%")
    rf"(?:(?<![A-Za-z0-9])[-+])?\d+(?:\.\d+)*(?:{_UNITS}(?![A-Za-z0-9]))?",
)
# Longer tokens are blobs (base64, serialised data): one parameter, no regex.
_MAX_TOKEN = 512

# A unit written as its own token after a number ("size 12.3 KB") belongs to it.
_UNIT_TOKENS = frozenset({
    "B", "KB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "bytes",
    "ns", "us", "ms", "s", "sec", "secs", "seconds", "min", "mins", "minutes",
    "h", "hours", "%",
})
# Month and weekday names before a masked day or time are part of a date
# ("at Fri Jun 17 07:07:00 2005" -> "at <*>"). Handled on tokens rather than with a
# line-wide regex, which would cost more than all the other masking together.
_MONTHS = frozenset(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Sept Oct Nov Dec January February March "
    "April June July August September October November December".split()
)
_WEEKDAYS = frozenset(
    "Mon Tue Wed Thu Fri Sat Sun Monday Tuesday Wednesday Thursday Friday Saturday "
    "Sunday".split()
)

_TOKEN_RE = re.compile("|".join(f"(?:{p})" for p in _TOKEN_PATTERNS))

# Log vocabularies are small, so caching per distinct token makes masking nearly
# free; the bound only matters for streams of unique ids, where it is cleared.
_TOKEN_CACHE: dict[str, str] = {}
_TOKEN_CACHE_MAX = 1 << 17


def _mask_tokens(text: str) -> list[str]:
    if "='" in text or '="' in text:
        text = _QUOTED_RE.sub(PARAM, text)
    out: list[str] = []
    cache = _TOKEN_CACHE
    for raw in text.split():
        token = cache.get(raw)
        if token is None:
            # A bare number (most misses: counts, codes, durations) is what the number
            # pattern masks whole; the alternation would try every pattern first.
            token = PARAM if len(raw) > _MAX_TOKEN or (raw.isascii() and raw.isdigit()) \
                else _TOKEN_RE.sub(PARAM, raw)
            if len(cache) >= _TOKEN_CACHE_MAX:
                cache.clear()
            cache[raw] = token
        if out:
            last = out[-1]
            if token.startswith(PARAM):
                if last in _MONTHS:
                    out.pop()
                    if out and out[-1].rstrip(",") in _WEEKDAYS:
                        out.pop()
                    if not out:
                        out.append(token)
                        continue
                    last = out[-1]
            elif last.endswith(PARAM):
                core = token.rstrip(".,;:)]}")
                if core in _UNIT_TOKENS:
                    out[-1] = last + token[len(core):]
                    continue
            # A list of values ("blk_1 blk_2 blk_3", "( 3552 3534 3375 )") varies in
            # length from line to line; one parameter stands for the whole run.
            if token == last and PARAM in token:
                continue
        out.append(token)
    return out


def mask(text: str) -> str:
    """``text`` with its variable parts replaced by ``<*>``: a cheap template.

    Uses the same rules as the miner, without learning anything: numbers (with
    units), hex and UUIDs, IPs with ports, MACs, dates and times, URLs, e-mails,
    paths, Kubernetes pod names, booleans and null, ``key="quoted values"``.
    Whitespace is normalised to single spaces, and a run of identical masked tokens
    (a list of values) becomes one.
    """
    return " ".join(_mask_tokens(text))


