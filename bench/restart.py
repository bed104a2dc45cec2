"""How soon a worker killed with SIGKILL is working again once restarted: with a stable name
(``TIERLINE_INSTANCE_ID``: static group membership) and without, on the embedded broker.

    .venv/bin/python -m bench.restart    # from the repository's folder

Prints, for each, the seconds from the restarted worker's start to its first partition assignment.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from datetime import datetime
from pathlib import Path

from streams.local.stack import broker_argv, embedded_env, free_port, running, spawn, tierline_argv, wait_for_port


def assigned_after(log: Path, timeout: float = 180) -> float:
    """Seconds from the worker's start to its first ``partitions_assigned``, from its own log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = [json.loads(line) for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
        started = next((e["timestamp"] for e in events if e.get("event") == "worker_starting"), None)
        assigned = next((e["timestamp"] for e in events if e.get("event") == "partitions_assigned"), None)
        if started and assigned:
            return (datetime.fromisoformat(assigned) - datetime.fromisoformat(started)).total_seconds()
        time.sleep(0.2)
    raise TimeoutError(f"no partitions_assigned in {log}")


def restart(work: Path, broker_port: int, instance_id: str) -> tuple[float, float]:
    env = embedded_env(broker_port, free_port(), work / instance_id / "data", TIERLINE_APP_ID=f"restart{instance_id}",
                       TIERLINE_TOPIC_PREFIX=f"restart{instance_id}.", TIERLINE_INSTANCE_ID=instance_id,
                       TIERLINE_SESSION_TIMEOUT_S="10")
    times = []
    for run in ("first", "again"):
        log = work / f"{instance_id or 'dynamic'}-{run}.log"
        proc = spawn(tierline_argv("worker"), env, log)
        wait_for_port(int(env["TIERLINE_WEB_PORT"]), 120, proc)
        times.append(assigned_after(log))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return times[0], times[1]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="tierline-restart-bench-"))
    port = free_port()
    with running(broker_argv(port), port, log=work / "broker.log"):
        for name, instance_id in (("dynamic membership", ""), ("TIERLINE_INSTANCE_ID", "replica-1")):
            cold, again = restart(work, port, instance_id)
            print(f"{name:<22} ready {cold:.1f} s after a cold start, {again:.1f} s after a restart from SIGKILL "
                  "(session timeout 10 s)")


if __name__ == "__main__":
    main()
