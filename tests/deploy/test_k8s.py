"""deploy/k8s, checked offline: every manifest against the Kubernetes JSON schemas (kubernetes-validate,
strict: unknown fields fail), the kustomization rendered both in Python and by `kubectl kustomize`, and
what the schemas cannot see: selectors that match, probes, autoscaling signals, TLS, the restricted pod
security profile, kefu's settings, and vLLM's flags against deploy/vllm/serve-bf16.sh."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from kefu.access.tokens import load_secret
from tests.deploy.manifests import (
    DEPLOY,
    K8S_DIR,
    VLLM_DIR,
    by_kind_and_name,
    kubectl_binary,
    kustomization,
    launch_script_args,
    pod_specs,
    project_version,
    render_kustomization,
    setting_env_names,
    settings_from_env,
    yaml_documents,
)

try:
    import kubernetes_validate
except ImportError:  # only the schema checks need it; the rest of this file runs without it
    kubernetes_validate = None

needs_schemas = pytest.mark.skipif(
    kubernetes_validate is None, reason="kubernetes-validate is absent (the dev extra installs it)"
)
# The oldest Kubernetes these manifests are meant for, and the newest whose schemas the package bundles.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version() if kubernetes_validate else "1.29.0")
EXPECTED = {
    ("Namespace", "kefu"),
    ("ConfigMap", "kefu-config"),
    ("Secret", "kefu-secrets"),
    ("Deployment", "kefu-api"),
    ("Deployment", "kefu-worker"),
    ("Deployment", "vllm"),
    ("Service", "kefu-api"),
    ("Service", "vllm"),
    ("HorizontalPodAutoscaler", "kefu-api"),
    ("PodDisruptionBudget", "kefu-api"),
    ("Ingress", "kefu"),
    ("PersistentVolumeClaim", "kefu-models"),
    ("NetworkPolicy", "kefu-api"),
    ("NetworkPolicy", "kefu-worker"),
    ("NetworkPolicy", "vllm"),
}


@pytest.fixture(scope="module")
def rendered() -> dict[tuple[str, str], dict[str, Any]]:
    return by_kind_and_name(render_kustomization())


def _templates(rendered: dict[tuple[str, str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: doc["spec"]["template"] for (kind, name), doc in rendered.items() if kind == "Deployment"}


@needs_schemas
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_passes_the_kubernetes_schema(version: str) -> None:
    for name in kustomization()["resources"]:
        for doc in yaml_documents(K8S_DIR / name):
            kubernetes_validate.validate(doc, version, strict=True)


@needs_schemas
def test_the_schema_check_rejects_a_misspelt_field_and_a_wrong_type() -> None:
    (deployment,) = yaml_documents(K8S_DIR / "api-deployment.yaml")
    misspelt = copy.deepcopy(deployment)
    container = misspelt["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbes"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelt, K8S_VERSIONS[0], strict=True)
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, K8S_VERSIONS[0], strict=True)


def test_the_kustomization_lists_every_manifest_once() -> None:
    resources = kustomization()["resources"]
    assert len(resources) == len(set(resources))
    on_disk = {path.name for path in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(resources) == on_disk


def test_the_rendering_has_every_resource_in_the_namespace(rendered: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert set(rendered) == EXPECTED
    for (kind, name), doc in rendered.items():
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kefu", (kind, name)
        if kind != "Namespace":
            assert doc["metadata"]["namespace"] == "kefu", (kind, name)


@pytest.mark.skipif(kubectl_binary() is None, reason="kubectl is absent: `kubectl kustomize` cannot be compared")
def test_kubectl_kustomize_renders_the_same_resources(rendered: dict[tuple[str, str], dict[str, Any]]) -> None:
    result = subprocess.run(
        [kubectl_binary() or "kubectl", "kustomize", str(K8S_DIR)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    by_kubectl = by_kind_and_name([doc for doc in yaml.safe_load_all(result.stdout) if doc])
    assert by_kubectl == rendered


def test_selectors_reach_the_pods_they_mean(rendered: dict[tuple[str, str], dict[str, Any]]) -> None:
    templates = _templates(rendered)
    for (kind, name), doc in rendered.items():
        if kind == "Deployment":
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert doc["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
    selects = {
        ("Service", "kefu-api"): rendered[("Service", "kefu-api")]["spec"]["selector"],
        ("Service", "vllm"): rendered[("Service", "vllm")]["spec"]["selector"],
        ("PodDisruptionBudget", "kefu-api"): rendered[("PodDisruptionBudget", "kefu-api")]["spec"]["selector"][
            "matchLabels"
        ],
    }
    for (kind, name), doc in rendered.items():
        if kind == "NetworkPolicy":
            selects[(kind, name)] = doc["spec"]["podSelector"]["matchLabels"]
    for key, selector in selects.items():
        matched = [d for d, t in templates.items() if selector.items() <= t["metadata"]["labels"].items()]
        assert matched == [key[1]], (key, matched)
    for service in ("kefu-api", "vllm"):
        target = rendered[("Service", service)]["spec"]["ports"][0]["targetPort"]
        ports = [p["name"] for c in templates[service]["spec"]["containers"] for p in c.get("ports", [])]
        assert target in ports, service
    hpa = rendered[("HorizontalPodAutoscaler", "kefu-api")]["spec"]["scaleTargetRef"]
    assert (hpa["kind"], hpa["name"]) in rendered


def test_the_api_scales_on_cpu_and_on_turns_in_flight(rendered: dict[tuple[str, str], dict[str, Any]]) -> None:
    spec = rendered[("HorizontalPodAutoscaler", "kefu-api")]["spec"]
    metrics = {m["type"]: m for m in spec["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Resource"]["resource"]["target"]["type"] == "Utilization"
    pods = metrics["Pods"]["pods"]
    assert pods["metric"]["name"] == "kefu_inflight_requests"
    assert pods["target"]["type"] == "AverageValue"
    pdb = rendered[("PodDisruptionBudget", "kefu-api")]["spec"]
    assert spec["minReplicas"] > pdb["minAvailable"], "a drain can always evict one API pod"
    rule = adapter_rule()
    assert rule["name"]["as"] == pods["metric"]["name"]
    assert "kefu_inflight_requests" in rule["seriesQuery"]
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}


def adapter_rule() -> dict[str, Any]:
    """The Prometheus adapter rule documented in deploy/README.md (the first yaml block with seriesQuery)."""
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"```yaml\n(.*?)```", readme, flags=re.S):
        if "seriesQuery" in block:
            data = yaml.safe_load(block)
            rules: list[dict[str, Any]] = data["rules"]
            return rules[0]
    raise AssertionError("deploy/README.md documents no Prometheus adapter rule")


def test_the_ingress_serves_https_with_a_cert_manager_certificate(
    rendered: dict[tuple[str, str], dict[str, Any]],
) -> None:
    ingress = rendered[("Ingress", "kefu")]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    (tls,) = ingress["spec"]["tls"]
    assert tls["secretName"] == "kefu-tls"
    assert set(tls["hosts"]) == {rule["host"] for rule in ingress["spec"]["rules"]}
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = rendered[("Service", backend["name"])]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def _probe_path(container: dict[str, Any], probe: str) -> str:
    return str(container[probe]["httpGet"]["path"])


def test_probes_ask_liveness_and_readiness_separately(rendered: dict[tuple[str, str], dict[str, Any]]) -> None:
    templates = _templates(rendered)
    api = templates["kefu-api"]["spec"]["containers"][0]
    assert _probe_path(api, "livenessProbe") == "/healthz"
    assert _probe_path(api, "startupProbe") == "/healthz"
    assert _probe_path(api, "readinessProbe") == "/readyz"
    vllm = templates["vllm"]["spec"]["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert _probe_path(vllm, probe) == "/health"
    startup = vllm["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600, "model loading takes minutes"


def test_every_pod_meets_the_restricted_security_profile(rendered: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert rendered[("Namespace", "kefu")]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, pod in pod_specs(list(rendered.values())):
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        assert not any("hostPath" in volume for volume in pod.get("volumes", [])), name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert not context.get("privileged"), name
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), (name, bound)
            image = container["image"]
            assert ":" in image and not image.endswith(":latest"), (name, image)


def test_kefu_pods_run_read_only_with_writable_scratch_folders(
    rendered: dict[tuple[str, str], dict[str, Any]],
) -> None:
    for name in ("kefu-api", "kefu-worker"):
        pod = _templates(rendered)[name]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == f"kefu:{project_version()}"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert {"/var/lib/kefu", "/tmp"} <= set(mounts), name
        assert {mounts["/var/lib/kefu"], mounts["/tmp"]} <= empty_dirs, name
        assert "/opt/kefu/models" not in mounts, "the models baked into the image must stay visible"
    worker = _templates(rendered)["kefu-worker"]["spec"]["containers"][0]
    assert worker["command"] == ["kefu", "worker", "--kafka", "kafka:9092"]


def test_config_and_secret_are_valid_kefu_settings(
    rendered: dict[tuple[str, str], dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = rendered[("ConfigMap", "kefu-config")]["data"]
    secret = rendered[("Secret", "kefu-secrets")]["stringData"]
    env = {**config, **secret}
    assert set(env) <= setting_env_names(), set(env) - setting_env_names()
    assert not set(config) & set(secret), "a setting lives in one place"
    settings = settings_from_env(env, monkeypatch)
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.redis_url.startswith("redis://")
    with pytest.raises(ValueError, match="KEFU_SECRET_KEY"):
        load_secret(settings.secret_key, tmp_path)  # the placeholder cannot go live
    url = urlparse(settings.llm_base_url)
    vllm_service = rendered[("Service", "vllm")]["spec"]["ports"][0]
    assert (url.hostname, url.port, url.path) == ("vllm", vllm_service["port"], "/v1")
    for name in ("kefu-api", "kefu-worker"):
        sources = _templates(rendered)[name]["spec"]["containers"][0]["envFrom"]
        refs = {next(iter(s.values()))["name"] for s in sources}
        assert refs == {"kefu-config", "kefu-secrets"}, name


def _vllm_container(rendered: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = _templates(rendered)["vllm"]["spec"]["containers"][0]
    return container


def test_vllm_runs_the_flags_of_the_launch_script(
    rendered: dict[tuple[str, str], dict[str, Any]], tmp_path: Path
) -> None:
    container = _vllm_container(rendered)
    args = container["args"]
    model, served = args[1], args[args.index("--served-model-name") + 1]
    env = {
        "MODEL": model,
        "SERVED_MODEL_NAME": served,
        "VLLM_API_KEY": "$(VLLM_API_KEY)",  # Kubernetes expands this from the container's env
    }
    assert container["command"] == ["vllm"]
    assert args == launch_script_args(VLLM_DIR / "serve-bf16.sh", env, tmp_path)
    config = rendered[("ConfigMap", "kefu-config")]["data"]
    assert config["KEFU_LLM_MODEL"] == served
    key = next(e for e in container["env"] if e["name"] == "VLLM_API_KEY")["valueFrom"]["secretKeyRef"]
    assert key["key"] in rendered[("Secret", key["name"])]["stringData"]


def test_vllm_gets_a_gpu_its_weights_and_shared_memory(rendered: dict[tuple[str, str], dict[str, Any]]) -> None:
    container = _vllm_container(rendered)
    args = container["args"]
    gpus = int(args[args.index("--tensor-parallel-size") + 1])
    assert container["resources"]["limits"]["nvidia.com/gpu"] == gpus
    pod = _templates(rendered)["vllm"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    claim = volumes[mounts["/models"]["name"]]["persistentVolumeClaim"]
    assert mounts["/models"]["readOnly"] is True and claim["readOnly"] is True
    assert ("PersistentVolumeClaim", claim["claimName"]) in rendered
    assert args[1].startswith("/models/")
    assert volumes[mounts["/dev/shm"]["name"]]["emptyDir"]["medium"] == "Memory"
    assert {"name": "HF_HUB_OFFLINE", "value": "1"} in container["env"]
    assert rendered[("Deployment", "vllm")]["spec"]["strategy"]["type"] == "Recreate"
