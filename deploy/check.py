#!/usr/bin/env python3
"""Syntax and structure check for deploy/ (no Docker engine needed, or used).

    .venv/bin/python deploy/check.py [--compose PATH] [--dockerfile PATH]

Parses deploy/docker-compose.yml and deploy/Dockerfile and asserts the shape
deploy/README.md describes. Prints every problem found and exits 1 if there is
any, 0 otherwise. Needs only the standard library and PyYAML.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
TRIAGE_DOCKERFILE = "deploy/Dockerfile"
EXPECTED_SERVICES = ("kafka", "postgres", "consume", "api")
TRIAGE_SERVICES = ("consume", "api")
SHARED_ENV = {
    "TRIAGE_KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
    "TRIAGE_DATABASE_URL": "postgresql://triage:triage@postgres:5432/triage",
    "TRIAGE_KAFKA_GROUP_ID": "triage",
    "TRIAGE_METRICS_PORT": "9464",
    "TRIAGE_KAFKA_FETCH_MAX_WAIT_MS": "500",
}
TORCH_PIN = "torch==2.13.0"


class Problems(list[str]):
    def check(self, ok: object, message: str) -> bool:
        if not ok:
            self.append(message)
        return bool(ok)


# --------------------------------------------------------------------- compose


def _env_dict(env: Any) -> dict[str, str] | None:
    """A service's `environment`, list or mapping form, as str -> str."""
    if env is None:
        return {}
    if isinstance(env, dict):
        return {str(k): "" if v is None else str(v) for k, v in env.items()}
    if isinstance(env, list):
        out = {}
        for item in env:
            key, _, value = str(item).partition("=")
            out[key] = value
        return out
    return None


def _merge_sources(node: yaml.Node) -> list[yaml.Node]:
    """The nodes a mapping node merges in with `<<` (alias targets, by identity)."""
    if not isinstance(node, yaml.MappingNode):
        return []
    sources: list[yaml.Node] = []
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:merge":
            sources.extend(value.value if isinstance(value, yaml.SequenceNode) else [value])
    return sources


def _child(node: yaml.Node | None, name: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == name:
            return value
    return None


def _is_triage(service: dict[str, Any], image: Any) -> bool:
    build = service.get("build")
    dockerfile = build.get("dockerfile") if isinstance(build, dict) else None
    return dockerfile == TRIAGE_DOCKERFILE or (image is not None and service.get("image") == image)


def _healthcheck_text(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test")
    return " ".join(map(str, test)) if isinstance(test, list) else str(test or "")


def check_compose(path: Path, problems: Problems) -> None:
    where = f"{path.name}:"
    try:
        text = path.read_text()
        data = yaml.safe_load(text)   # resolves anchors and `<<` merges
        root = yaml.compose(text)     # keeps them, so their use can be checked
    except (OSError, yaml.YAMLError) as e:
        problems.append(f"{where} cannot read/parse: {e}")
        return
    if not problems.check(isinstance(data, dict), f"{where} top level is not a mapping"):
        return
    problems.check("version" not in data, f"{where} has a `version:` key (compose spec files have none)")

    shared = data.get("x-triage")
    if not problems.check(isinstance(shared, dict), f"{where} no `x-triage` mapping (the shared triage config)"):
        return
    shared_env = _env_dict(shared.get("environment"))
    problems.check(shared_env == SHARED_ENV,
                   f"{where} x-triage.environment is {shared_env}, expected {SHARED_ENV}")
    image = shared.get("image")
    build = shared.get("build")
    problems.check(isinstance(build, dict) and build.get("context") == ".."
                   and build.get("dockerfile") == TRIAGE_DOCKERFILE,
                   f"{where} x-triage.build must be context '..', dockerfile {TRIAGE_DOCKERFILE!r}")

    services = data.get("services")
    if not problems.check(isinstance(services, dict), f"{where} no `services` mapping"):
        return
    for name in EXPECTED_SERVICES:
        problems.check(isinstance(services.get(name), dict), f"{where} service {name!r} missing")

    # Anchor use, checked on the node graph: an alias is the anchored node itself.
    x_node = _child(root, "x-triage")
    env_node = _child(x_node, "environment")
    service_nodes = _child(root, "services")

    triage_names = [n for n, s in services.items() if isinstance(s, dict) and _is_triage(s, image)]
    for name in TRIAGE_SERVICES:
        problems.check(name in triage_names, f"{where} service {name!r} is not built from {TRIAGE_DOCKERFILE}")
    for name in triage_names:
        svc = services[name]
        node = _child(service_nodes, name)
        problems.check(any(src is x_node for src in _merge_sources(node)),
                       f"{where} service {name!r} does not merge the shared config (`<<: *triage`)")
        own_env = _child(node, "environment")
        problems.check(own_env is None or own_env is env_node
                       or any(src is env_node for src in _merge_sources(own_env)),
                       f"{where} service {name!r} sets `environment` without merging the shared one")
        env = _env_dict(svc.get("environment"))
        problems.check(env is not None, f"{where} service {name!r}: unreadable environment")
        if env is not None:
            for key, value in SHARED_ENV.items():
                problems.check(env.get(key) == value,
                               f"{where} service {name!r}: {key}={env.get(key)!r}, shared config says {value!r}")
        deps = svc.get("depends_on")
        for dep in ("kafka", "postgres"):
            cond = (deps or {}).get(dep, {}).get("condition") if isinstance(deps, dict) else None
            problems.check(cond == "service_healthy",
                           f"{where} service {name!r} must depend on {dep} with condition service_healthy")
        problems.check(svc.get("restart") == "unless-stopped", f"{where} service {name!r}: restart is not unless-stopped")
        problems.check("container_name" not in svc, f"{where} service {name!r} has container_name (breaks scaling)")

    consume = services.get("consume")
    if isinstance(consume, dict):
        problems.check(consume.get("command") == ["consume"], f"{where} consume.command is not ['consume']")
        replicas = (consume.get("deploy") or {}).get("replicas")
        problems.check(replicas == 2, f"{where} consume.deploy.replicas is {replicas!r}, expected 2")
        problems.check(not consume.get("ports"), f"{where} consume publishes ports (replicas would clash)")

    api = services.get("api")
    if isinstance(api, dict):
        problems.check(api.get("command") == ["api"], f"{where} api.command is not ['api']")
        env = _env_dict(api.get("environment")) or {}
        problems.check(env.get("TRIAGE_API_HOST") == "0.0.0.0", f"{where} api: TRIAGE_API_HOST is not 0.0.0.0")
        problems.check(env.get("TRIAGE_API_PORT") == "8080", f"{where} api: TRIAGE_API_PORT is not 8080")
        problems.check("8080:8080" in [str(p) for p in api.get("ports") or []], f"{where} api does not publish 8080:8080")

    kafka = services.get("kafka")
    if isinstance(kafka, dict):
        problems.check(str(kafka.get("image", "")).startswith("apache/kafka"), f"{where} kafka image is not apache/kafka")
        env = _env_dict(kafka.get("environment")) or {}
        expected = {
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:9092",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_NUM_PARTITIONS": "4",
            "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "true",
        }
        for key, value in expected.items():
            problems.check(env.get(key) == value, f"{where} kafka: {key}={env.get(key)!r}, expected {value!r}")
        for key in ("KAFKA_NODE_ID", "KAFKA_LISTENERS", "KAFKA_CONTROLLER_QUORUM_VOTERS",
                    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"):
            problems.check(env.get(key), f"{where} kafka: {key} not set")
        listeners = env.get("KAFKA_LISTENERS", "")
        problems.check(":9092" in listeners and "CONTROLLER://" in listeners and ":9093" in listeners,
                       f"{where} kafka: listeners must be PLAINTEXT on 9092 and CONTROLLER on 9093")
        problems.check("kafka-topics.sh" in _healthcheck_text(kafka), f"{where} kafka healthcheck does not use kafka-topics.sh")
        problems.check(kafka.get("volumes"), f"{where} kafka has no volume")

    postgres = services.get("postgres")
    if isinstance(postgres, dict):
        problems.check(postgres.get("image") == "postgres:16", f"{where} postgres image is not postgres:16")
        env = _env_dict(postgres.get("environment")) or {}
        for key, value in (("POSTGRES_DB", "triage"), ("POSTGRES_USER", "triage"), ("POSTGRES_PASSWORD", "triage")):
            problems.check(env.get(key) == value, f"{where} postgres: {key} is not {value!r}")
        problems.check("pg_isready" in _healthcheck_text(postgres), f"{where} postgres healthcheck does not use pg_isready")
        problems.check(postgres.get("volumes"), f"{where} postgres has no volume")

    declared = set((data.get("volumes") or {}).keys())
    for name, svc in services.items():
        for vol in (svc or {}).get("volumes") or []:
            source = str(vol).split(":", 1)[0] if isinstance(vol, str) else (vol or {}).get("source")
            if source and not source.startswith((".", "/", "~", "$")):
                problems.check(source in declared, f"{where} service {name!r} uses undeclared volume {source!r}")
            if source and source.startswith("./"):   # a bind mount of a file kept beside the compose file
                problems.check((path.parent / source).exists(),
                               f"{where} service {name!r} mounts {source!r}, which does not exist")


# ------------------------------------------------------------------ Dockerfile


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            continue          # comments, also inside continuations, as Docker does
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    if pending.strip():
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _exec_form(args: str) -> list[str] | None:
    try:
        value = json.loads(args)
    except ValueError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def _pip_install_args(run: str) -> list[list[str]]:
    """The arguments of every `pip install` (or `python -m pip install`) in one RUN."""
    try:
        words = shlex.split(run)
    except ValueError:
        words = run.split()
    result: list[list[str]] = []
    i = 0
    while i < len(words):
        w = words[i]
        is_pip = re.fullmatch(r"(.*/)?pip3?(\.\d+)?", w) is not None
        is_module = w == "-m" and i + 1 < len(words) and words[i + 1] == "pip"
        if is_pip or is_module:
            j = i + (2 if is_module else 1)
            if j < len(words) and words[j] == "install":
                args = []
                j += 1
                while j < len(words) and words[j] not in ("&&", "||", ";", "|"):
                    args.append(words[j])
                    j += 1
                result.append(args)
                i = j
                continue
        i += 1
    return result


def check_dockerfile(path: Path, problems: Problems) -> None:
    where = f"{path.name}:"
    try:
        instructions = _instructions(path.read_text())
    except OSError as e:
        problems.append(f"{where} cannot read: {e}")
        return
    if not problems.check(instructions, f"{where} empty"):
        return
    first = next((i for i in instructions if i[0] != "ARG"), None)
    problems.check(first and first[0] == "FROM", f"{where} first instruction is not FROM")
    froms = [args for word, args in instructions if word == "FROM"]
    problems.check(froms and froms[-1].split()[0] == "python:3.11-slim",
                   f"{where} final stage is not FROM python:3.11-slim")

    users = [args.split(":")[0] for word, args in instructions if word == "USER"]
    problems.check(users and users[-1] not in ("root", "0"), f"{where} does not switch to a non-root USER")

    entrypoints = [args for word, args in instructions if word == "ENTRYPOINT"]
    problems.check(entrypoints and _exec_form(entrypoints[-1]) == ["triage"],
                   f"{where} ENTRYPOINT is not [\"triage\"] (exec form)")
    cmds = [args for word, args in instructions if word == "CMD"]
    problems.check(cmds and _exec_form(cmds[-1]) == ["serve"], f"{where} CMD is not [\"serve\"]")
    problems.check(any(word == "EXPOSE" and "8080" in args.split() for word, args in instructions),
                   f"{where} does not EXPOSE 8080")
    problems.check(any(word == "HEALTHCHECK" and "/healthz" in args for word, args in instructions),
                   f"{where} has no HEALTHCHECK on /healthz")

    env_text = " ".join(args for word, args in instructions if word == "ENV")
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        problems.check(re.search(rf"(^|\s){var}=1(\s|$)", env_text), f"{where} does not set ENV {var}=1")

    torch_at = project_at = None
    for index, (word, args) in enumerate(instructions):
        if word != "RUN":
            continue
        for pip_args in _pip_install_args(args):
            if TORCH_PIN in pip_args and torch_at is None:
                torch_at = index
            if any(a in (".", ".[ml]") or a.startswith(".[") for a in pip_args) and project_at is None:
                project_at = index
                problems.check(TORCH_PIN not in pip_args,
                               f"{where} torch must be installed on its own, before the project")
    problems.check(torch_at is not None, f"{where} never runs `pip install {TORCH_PIN}`")
    problems.check(project_at is not None, f"{where} never installs the project (`pip install '.[ml]'`)")
    if torch_at is not None and project_at is not None:
        problems.check(torch_at < project_at, f"{where} installs the project before pinning {TORCH_PIN}")
    problems.check(any(word == "COPY" and args.split()[-1].rstrip("/") == "/app" for word, args in instructions),
                   f"{where} does not COPY the build context to /app")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compose", type=Path, default=HERE / "docker-compose.yml")
    parser.add_argument("--dockerfile", type=Path, default=HERE / "Dockerfile")
    args = parser.parse_args(argv)

    problems = Problems()
    check_compose(args.compose, problems)
    check_dockerfile(args.dockerfile, problems)
    if problems:
        print(f"deploy check FAILED ({len(problems)} problem(s)):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print(f"deploy check OK: {args.compose.name}, {args.dockerfile.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
