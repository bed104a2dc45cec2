"""deploy/kubernetes: the kustomize base, rendered by kubectl and validated against the Kubernetes API's schemas.

No cluster runs here: ``kubectl kustomize`` renders the base as ``kubectl apply -k`` would, kubernetes-validate
checks each object against the API's own schemas (strict: a misspelt field fails), and what the workers are
handed is checked against tierline's settings.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from streams.secret_files import SUFFIX
from streams.settings import PROVIDER_ENV, Settings

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "deploy" / "kubernetes"
SETTINGS = {env for env, _, _ in Settings.documented()}

pytestmark = pytest.mark.integration  # runs kubectl


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not installed: apt-get install kubernetes-client (.ci/run does)")
    done = subprocess.run(["kubectl", "kustomize", str(BASE)], capture_output=True, text=True, check=True)
    return {doc["kind"]: doc for doc in yaml.safe_load_all(done.stdout)}


@pytest.fixture(scope="module")
def worker(rendered: dict[str, dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = rendered["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.mark.parametrize("version", ["1.29.0", kubernetes_validate.latest_version()])
def test_every_object_is_valid_for_the_kubernetes_api(rendered: dict[str, dict[str, Any]], version: str) -> None:
    assert set(rendered) == {"ConfigMap", "Service", "StatefulSet", "PodDisruptionBudget"}
    for document in rendered.values():
        kubernetes_validate.validate(document, version, strict=True)


def test_each_pods_name_is_its_static_membership_id(rendered: dict[str, dict[str, Any]],
                                                     worker: dict[str, Any]) -> None:
    statefulset = rendered["StatefulSet"]
    assert statefulset["spec"]["serviceName"] == rendered["Service"]["metadata"]["name"]
    (instance,) = [env for env in worker["env"] if env["name"] == "TIERLINE_INSTANCE_ID"]
    assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert {"name": "data", "mountPath": "/data"} in worker["volumeMounts"]


def test_probes_and_scraping_reach_the_workers_web_port(rendered: dict[str, dict[str, Any]],
                                                        worker: dict[str, Any]) -> None:
    env = {item["name"]: item.get("value") for item in worker["env"]}
    (port,) = worker["ports"]
    assert str(port["containerPort"]) == env["TIERLINE_WEB_PORT"] and env["TIERLINE_WEB_HOST"] == "0.0.0.0"
    assert worker["livenessProbe"]["httpGet"] == {"path": "/livez", "port": port["name"]}
    assert worker["startupProbe"]["httpGet"] == {"path": "/livez", "port": port["name"]}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    annotations = rendered["StatefulSet"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": env["TIERLINE_WEB_PORT"],
                           "prometheus.io/path": "/metrics"}


def test_settings_come_from_the_config_map_and_secrets_from_the_secret_as_files(
        rendered: dict[str, dict[str, Any]], worker: dict[str, Any]) -> None:
    settings = rendered["ConfigMap"]["data"]
    assert set(settings) <= SETTINGS
    assert not [name for name in settings if re.search("PASSWORD|SECRET|TOKEN|_KEY$", name)]
    config_map = rendered["ConfigMap"]["metadata"]["name"]
    assert [source["configMapRef"]["name"] for source in worker["envFrom"]] == [config_map]
    parsed = Settings.from_env({**settings, "TIERLINE_KAFKA_SASL_PASSWORD": "from the Secret"})
    assert (parsed.kafka_security_protocol, parsed.replication) == ("SASL_SSL", 3)

    (mount,) = [m for m in worker["volumeMounts"] if m["name"] == "secrets"]
    (volume,) = [v for v in rendered["StatefulSet"]["spec"]["template"]["spec"]["volumes"] if v["name"] == "secrets"]
    assert mount["readOnly"] and volume["secret"]["secretName"] == "tierline"
    from_files = {item["name"]: item["value"] for item in worker["env"] if item["name"].endswith(SUFFIX)}
    assert "TIERLINE_KAFKA_SASL_PASSWORD_FILE" in from_files and "ANTHROPIC_API_KEY_FILE" in from_files
    for name, path in from_files.items():
        assert name.removesuffix(SUFFIX) in SETTINGS | set(PROVIDER_ENV)  # streams.secret_files reads it
        assert Path(path).parent == Path(mount["mountPath"])
    assert {item["name"] for item in worker["env"]} - set(from_files) <= SETTINGS


def test_the_worker_runs_as_the_images_user_without_privileges_and_has_time_to_stop(
        rendered: dict[str, dict[str, Any]], worker: dict[str, Any]) -> None:
    pod = rendered["StatefulSet"]["spec"]["template"]["spec"]
    uid = re.search(r"--uid (\d+)", (ROOT / "Dockerfile").read_text())
    assert uid and pod["securityContext"]["runAsUser"] == int(uid.group(1)) and pod["securityContext"]["runAsNonRoot"]
    assert worker["securityContext"]["allowPrivilegeEscalation"] is False
    assert worker["securityContext"]["readOnlyRootFilesystem"] and {"name": "tmp", "mountPath": "/tmp"} in worker[
        "volumeMounts"]
    assert pod["terminationGracePeriodSeconds"] > Settings().shutdown_s
    assert rendered["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1
