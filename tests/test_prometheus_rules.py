"""deploy/prometheus: the alert and recording rules, checked and unit-tested by Prometheus's own promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from markdown.extensions.toc import slugify

from schemas import ALERT_KINDS
from streams import metrics

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "tierline.rules.yml"
DOCS = "https://tierline.example/docs/"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is not installed: apt-get install prometheus (.ci/run does)")
    return subprocess.run(["promtool", *args], cwd=RULES.parent, capture_output=True, text=True, timeout=120)


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_finds_the_rules_valid_and_every_unit_test_passes() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "tierline.rules.test.yml")
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_every_alert_is_unit_tested_firing() -> None:
    tests = yaml.safe_load((RULES.parent / "tierline.rules.test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    assert fired == {rule["alert"] for rule in alerts()}


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section_that_exists() -> None:
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    anchors = {slugify(heading.strip(), "-") for heading in re.findall(r"^## (.+)$", runbook, re.MULTILINE)}
    for rule in alerts():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(DOCS + "runbook/#"), rule["alert"]
        anchor = url.split("#", 1)[1]
        wanted = set(re.findall(r'kind=~"([^"]+)"', rule["expr"])[0].split("|")) if "$labels.kind" in anchor else {
            anchor}
        assert wanted <= anchors, (rule["alert"], wanted - anchors)


def test_every_kind_of_alert_on_kafka_has_a_rule() -> None:
    exprs = " ".join(rule["expr"] for rule in alerts())
    covered = set(re.findall(r'kind="(\w+)"', exprs)) | {k for m in re.findall(r'kind=~"([^"]+)"', exprs)
                                                         for k in m.split("|")}
    covered.add("stalled")  # TierlineBatchStalled, batch by batch, from tierline_batch_unchanged_seconds
    assert covered == set(ALERT_KINDS)


def test_the_rules_read_only_metrics_the_worker_exports() -> None:
    exported = {sample for family in metrics.REGISTRY.collect() for sample in
                {family.name, f"{family.name}_total", f"{family.name}_bucket"}}
    text = RULES.read_text()
    used = set(re.findall(r"\b(tierline_[a-z_]+)\b", text))
    assert used and used <= exported, used - exported
