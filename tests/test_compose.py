"""docker-compose.yml: Kafka in KRaft mode, two workers with a health check, the emulator on demand."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from streams.settings import Settings
from streams.worker import PROVIDER_ENV

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_one_kraft_broker_two_workers_and_the_emulator_as_a_profile(compose: dict) -> None:
    services = compose["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft: no ZooKeeper
    workers = [s for s in services.values() if s.get("command") == ["tierline", "worker"]]
    assert len(workers) == 2
    for worker in workers:
        assert "/readyz" in " ".join(worker["healthcheck"]["test"])
        assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    # Each its own host port, the same inside, published on the host's loopback only.
    assert [w["ports"][0].rsplit(":", 1)[1] for w in workers] == ["6066", "6066"]
    assert all(w["ports"][0].startswith("127.0.0.1:") for w in workers)
    assert services["emulator"]["profiles"] == ["emulator"]


def test_every_setting_reaches_the_workers_and_each_is_in_env_example(compose: dict) -> None:
    settings = {env for env, _, _ in Settings.documented()}
    known = settings | set(PROVIDER_ENV)
    example = (ROOT / ".env.example").read_text().splitlines()
    named = {line.lstrip("# ").split("=")[0] for line in example if "=" in line and not line.startswith("#   ")}
    for name, service in compose["services"].items():
        if service.get("command") == ["tierline", "worker"]:
            assert service["env_file"] == ".env", name  # all of it, whatever is set there
            assert set(service["environment"]) <= settings, name
            # A setting added to the code and forgotten here fails this test.
            assert settings - named == set(service["environment"]), name
    assert named <= known


def compose_command() -> list[str] | None:
    """``docker compose`` (v2) if the plugin is there, else ``docker-compose`` (v1)."""
    for argv in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(argv[0]) and subprocess.run([*argv, "version"], capture_output=True).returncode == 0:
            return argv
    return None


@pytest.mark.integration  # runs docker-compose
def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    argv = compose_command()
    if argv is None:
        pytest.skip("neither docker compose nor docker-compose is installed (.ci/run installs docker-compose)")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    for profile in ([], ["--profile", "emulator"]):
        done = subprocess.run([*argv, *profile, "config", "-q"], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_the_image_runs_as_a_user_of_its_own_and_installs_dependencies_before_the_source() -> None:
    lines = [line.split() for line in (ROOT / "Dockerfile").read_text().splitlines() if line and line[0].isupper()]
    steps = [words[0] for words in lines]
    users = [words[1] for words in lines if words[0] == "USER"]
    assert users and users[-1] not in ("root", "0"), "the worker runs as a user of its own"
    copies = [words[1:] for words in lines if words[0] == "COPY"]
    assert copies[0] == ["pyproject.toml", "./"] and copies[1] == [".", "."], "dependencies, then the source"
    assert steps.index("RUN") < steps.index("COPY", steps.index("COPY") + 1), "a layer of dependencies first"
