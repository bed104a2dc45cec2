"""``tierline demo``, as a newcomer runs it first (make demo): every tier, and figures that add up."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from streams.local.stack import tierline_argv

pytestmark = pytest.mark.integration  # the embedded broker, emulator, S3 server and a worker


def figure(text: str, label: str) -> int:
    found = re.search(rf"^ +{label} +([\d,]+)$", text, re.MULTILINE)
    assert found, label
    return int(found.group(1).replace(",", ""))


def test_the_demo_runs_every_tier_and_every_line_it_publishes_ends_once(tmp_path: Path) -> None:
    # A real deployment's .env where the demo is run: the CLI reads it, and the demo's own stack must not take its
    # topic prefix (or security settings), or its worker would wait on other topics.
    (tmp_path / ".env").write_text("TIERLINE_TOPIC_PREFIX=mine.\nTIERLINE_APP_ID=mine\nTIERLINE_PARTITIONS=12\n")
    # The demo's own time limit first, so that a demo that does not finish says where it got to.
    done = subprocess.run(tierline_argv("demo", "--timeout", "240"), capture_output=True, text=True, timeout=420,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "5 verified as Standard Webhooks" in out and "routed to tier flex" in out and "tier realtime" in out
    published, ended = figure(out, "lines published"), figure(out, "ended")
    succeeded, failed, dead = figure(out, "succeeded"), figure(out, "failed for good"), figure(out, "dead-lettered")
    assert published == ended == succeeded + failed + dead == 2_448
    # The lines tierline submit would have refused are named, and are exactly the dead letters.
    invalid = re.search(r"invalid lines of demo_workload\.jsonl: (.+)$", out, re.MULTILINE)
    assert invalid and len(invalid.group(1).split(", ")) == figure(out, "invalid on purpose") == dead
    progress = [line for line in out.splitlines() if re.match(r"[\d,]+/2,448 ended", line)]
    assert progress and progress[-1].startswith("2,448/2,448 ended") and f"dead-lettered {dead}" in progress[-1]
    assert re.search(r"would have cost \$[\d.]+: saved \$[\d.]+ \((49|50)\.\d%\)", out)  # batch: half price



def test_a_demo_killed_outright_leaves_no_process_of_its_own_holding_a_port(tmp_path: Path) -> None:
    proc = subprocess.Popen(tierline_argv("demo"), stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    assert proc.stdout is not None
    said = []
    for line in proc.stdout:  # the stack is up once the worker's addresses are printed
        said.append(line)
        if line.lstrip().startswith("worker"):
            break
    ports = {int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)", "".join(said))}
    assert len(ports) == 4, said  # broker, emulator, S3 server, worker
    proc.kill()  # SIGKILL: no clean-up of its own
    proc.wait(10)
    deadline = time.monotonic() + 20
    while (listening := [port for port in ports if answers(port)]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not listening, f"still listening after the demo was killed: {listening}"


def answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0
