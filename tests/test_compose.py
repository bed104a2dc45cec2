"""The compose files: Kafka and two workers; the emulator with a worker of its own; workers only on your own Kafka.

This machine runs no Docker engine: each file is validated against the Compose Specification's schema and
read by docker-compose's own ``config``, and what it hands the workers is checked against the settings.
"""

from __future__ import annotations

import importlib.resources
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from dotenv import dotenv_values

from streams.secret_files import SUFFIX
from streams.settings import PROVIDER_ENV, Settings

ROOT = Path(__file__).resolve().parent.parent
FILES = ("docker-compose.yml", "docker-compose.managed.yml")
SETTINGS = {env for env, _, _ in Settings.documented()}


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return loaded


def workers(compose: dict[str, Any], profile: str | None = None) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose["services"].items()
            if service.get("command") == ["tierline", "worker"] and service.get("profiles", [None]) == [profile]}


@pytest.mark.parametrize("name", FILES)
def test_each_file_is_valid_compose(name: str) -> None:
    schema = json.loads((importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
                         / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(load(name))  # its $schema: draft 7, spelt as jsonschema does not know


def test_one_kraft_broker_and_two_workers() -> None:
    compose = load("docker-compose.yml")
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft: no ZooKeeper
    both = workers(compose)
    assert len(both) == 2
    for worker in both.values():
        assert "/readyz" in " ".join(worker["healthcheck"]["test"])
        assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert worker["environment"]["TIERLINE_BROKER"] == "kafka://kafka:9092"


@pytest.mark.parametrize("name", FILES)
def test_each_worker_is_published_on_the_hosts_loopback_with_a_volume_and_an_instance_id_of_its_own(name: str) -> None:
    services = {**workers(load(name)), **workers(load(name), "emulator")}
    assert all(len(w["ports"]) == 1 and w["ports"][0].startswith("127.0.0.1:") for w in services.values())
    assert [w["ports"][0].rsplit(":", 1)[1] for w in services.values()] == ["6066"] * len(services)
    assert len({w["ports"][0] for w in services.values()}) == len(services)
    assert len({w["environment"]["TIERLINE_INSTANCE_ID"] for w in services.values()}) == len(services)
    volumes = [next(v for v in w["volumes"] if v.endswith(":/data")) for w in services.values()]
    assert len(set(volumes)) == len(services)


def test_the_emulator_profile_needs_no_key_and_no_edit_and_keeps_to_topics_of_its_own() -> None:
    compose = load("docker-compose.yml")
    (worker,) = workers(compose, "emulator").values()
    env = worker["environment"]
    assert (env["TIERLINE_TOPIC_PREFIX"], env["TIERLINE_APP_ID"]) != ("tierline.", "tierline")
    # Every provider reached through the emulator or its S3 server, with a key of the emulator's.
    urls = {name: url for name, url in env.items()
            if name.endswith(("_BASE_URL", "_ENDPOINT")) or "ENDPOINT_URL" in name}
    assert {"ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "GOOGLE_GEMINI_BASE_URL", "AWS_ENDPOINT_URL_BEDROCK",
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL_S3"} <= set(urls)
    assert all(url.startswith(("http://emulator:8800", "http://s3:5000")) for url in urls.values())
    lanes = Settings(providers_file=str(ROOT / "streams/data/providers.example.toml")).lanes
    for lane in lanes:
        assert env[lane.api_key_env] == "emulator" and lane.name.upper() in " ".join(urls), lane.name
    emulator = compose["services"]["emulator"]
    assert emulator["profiles"] == ["emulator"]
    assert env["TIERLINE_PROVIDERS_FILE"] == emulator["command"][emulator["command"].index("--providers-file") + 1]
    assert env["TIERLINE_PROVIDERS_FILE"].startswith("/app/")  # the Dockerfile's WORKDIR, where the source is
    assert worker["depends_on"]["s3-bucket"]["condition"] == "service_completed_successfully"


def test_the_managed_file_runs_workers_only_on_the_kafka_of_env() -> None:
    compose = load("docker-compose.managed.yml")
    assert set(compose["services"]) == set(workers(compose))
    for worker in workers(compose).values():
        assert "depends_on" not in worker
        assert "TIERLINE_BROKER" not in worker["environment"]  # .env's, with the security settings
        assert "./config:/etc/tierline:ro" in worker["volumes"]  # a CA, providers and prices file


def test_the_managed_files_secrets_come_from_files_each_read_by_the_worker() -> None:
    compose = load("docker-compose.managed.yml")
    known = SETTINGS | set(PROVIDER_ENV)
    for worker in workers(compose).values():
        from_files = {name: path for name, path in worker["environment"].items() if name.endswith(SUFFIX)}
        assert {"TIERLINE_KAFKA_SASL_PASSWORD_FILE", "ANTHROPIC_API_KEY_FILE", "OPENAI_API_KEY_FILE"} <= set(from_files)
        for name, path in from_files.items():
            assert name.removesuffix(SUFFIX) in known  # streams.secret_files reads it
            assert path.removeprefix("/run/secrets/") in worker["secrets"], name
    assert all(secret["file"].startswith("./secrets/") for secret in compose["secrets"].values())
    assert "secrets/" in (ROOT / ".gitignore").read_text().split()


def test_the_confluent_cloud_example_is_settings_that_work_there() -> None:
    example = {name: value for name, value in dotenv_values(ROOT / "deploy/compose/confluent-cloud.env").items()
               if value is not None}
    assert set(example) <= SETTINGS
    assert "TIERLINE_KAFKA_SASL_PASSWORD" not in example  # the API secret is in secrets/, not here
    settings = Settings.from_env({**example, "TIERLINE_KAFKA_SASL_PASSWORD": "from secrets/kafka-password"})
    assert (settings.kafka_security_protocol, settings.kafka_sasl_mechanism) == ("SASL_SSL", "PLAIN")
    assert settings.replication == 3  # Confluent Cloud refuses any other


@pytest.mark.parametrize("name", FILES)
def test_every_setting_reaches_the_workers_and_each_is_in_env_example(name: str) -> None:
    example = (ROOT / ".env.example").read_text().splitlines()
    named = {line.lstrip("# ").split("=")[0] for line in example if "=" in line and not line.startswith("#   ")}
    assert named <= SETTINGS | set(PROVIDER_ENV)
    for service, worker in workers(load(name)).items():
        assert worker["env_file"] == ".env", service  # all of it, whatever is set there
        own = {env for env in worker["environment"] if not env.endswith(SUFFIX)}
        assert own <= SETTINGS, service
        # A setting added to the code and forgotten in .env.example fails this test.
        assert SETTINGS - named <= own, service


def compose_command() -> list[str] | None:
    """``docker compose`` (v2) if the plugin is there, else ``docker-compose`` (v1)."""
    for argv in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(argv[0]) and subprocess.run([*argv, "version"], capture_output=True).returncode == 0:
            return argv
    return None


@pytest.mark.integration  # runs docker-compose
@pytest.mark.parametrize(("name", "profile"), [("docker-compose.yml", []),
                                               ("docker-compose.yml", ["--profile", "emulator"]),
                                               ("docker-compose.managed.yml", [])])
def test_docker_compose_accepts_the_file(name: str, profile: list[str], tmp_path: Path) -> None:
    argv = compose_command()
    if argv is None:
        pytest.skip("neither docker compose nor docker-compose is installed (.ci/run installs docker-compose)")
    shutil.copy(ROOT / name, tmp_path)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    (tmp_path / "secrets").mkdir()
    for secret in load(name).get("secrets", {}).values():
        (tmp_path / secret["file"]).touch()
    done = subprocess.run([*argv, "-f", name, *profile, "config"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert set(load(name)["services"]) <= set(yaml.safe_load(done.stdout)["services"])


def test_the_image_runs_as_a_user_of_its_own_and_installs_dependencies_before_the_source() -> None:
    lines = [line.split() for line in (ROOT / "Dockerfile").read_text().splitlines() if line and line[0].isupper()]
    steps = [words[0] for words in lines]
    users = [words[1] for words in lines if words[0] == "USER"]
    assert users and users[-1] not in ("root", "0"), "the worker runs as a user of its own"
    copies = [words[1:] for words in lines if words[0] == "COPY"]
    assert copies[0] == ["pyproject.toml", "./"] and copies[1] == [".", "."], "dependencies, then the source"
    assert steps.index("RUN") < steps.index("COPY", steps.index("COPY") + 1), "a layer of dependencies first"


def test_secrets_and_local_state_stay_out_of_the_image() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".env", "secrets", "config", ".venv", ".git"} <= ignored  # COPY . . would bake them into a layer


def test_the_monitoring_profile_scrapes_every_worker_with_the_shipped_rules_and_dashboard() -> None:
    compose = load("docker-compose.yml")
    services = compose["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert prometheus["profiles"] == grafana["profiles"] == ["monitoring"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in prometheus["volumes"] if volume.startswith(".")}
    config = yaml.safe_load((ROOT / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    assert [f"/etc/prometheus/{name}" for name in config["rule_files"]] == ["/etc/prometheus/tierline.rules.yml"]
    assert mounts["/etc/prometheus/tierline.rules.yml"] == "./deploy/prometheus/tierline.rules.yml"
    targets = {job["job_name"]: [t for group in job["static_configs"] for t in group["targets"]]
               for job in config["scrape_configs"]}
    port = "6066"
    assert sorted(targets["tierline"]) == sorted(f"{name}:{port}" for name in workers(compose))
    assert targets["tierline-emulated"] == [f"{name}:{port}" for name in workers(compose, "emulator")]
    assert all(w["environment"]["TIERLINE_WEB_PORT"] == port for w in workers(compose).values())
    datasources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    dashboards = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/tierline.yml").read_text())
    folder = dashboards["providers"][0]["options"]["path"]
    assert f"./deploy/grafana/tierline.json:{folder}/tierline.json:ro" in grafana["volumes"]
    assert all(port.startswith("127.0.0.1:") for service in (prometheus, grafana) for port in service["ports"])
