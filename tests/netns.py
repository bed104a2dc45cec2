"""Several hosts on one machine: Linux network namespaces joined by a bridge, for tests that cut one off.

A ``Network`` makes a *hub* namespace (the broker and the emulator, on ``HUB``) and one namespace per
worker host, each joined to the hub's bridge by a veth pair, with addresses only between them
(10.213.0.0/24). A host's links are cut with iptables inside its own namespace, or made lossy
(``tc netem``, or iptables' random drop where the kernel has no netem); a process is started in a
namespace with ``ip netns exec`` (which execs it: the PID is the process's own). Everything is removed
at the end, also when the test fails: the processes by their PIDs, then the namespaces (their veths go
with them).

It needs root, ``ip`` (iproute2), ``iptables`` and ``tc``: where they are missing the test fails
saying so, never skips.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

__all__ = ["Network", "HUB", "check_namespaces"]

HUB = "10.213.0.1"
SUBNET = 24


def check_namespaces() -> None:
    """Fail (not skip) where hosts cannot be made: say what is missing."""
    missing = [tool for tool in ("ip", "iptables", "tc") if shutil.which(tool) is None]
    assert os.geteuid() == 0, "the network namespace tests need root (ip netns, iptables)"
    assert not missing, f"the network namespace tests need {', '.join(missing)}: apt-get install iproute2 iptables"


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


class Network:
    """The hub and the worker hosts; ``close`` undoes all of it."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self._tag = tag
        self.hub = f"tl-{tag}-hub"
        self.hosts: dict[str, str] = {}  # host name -> its address
        self.procs: list[subprocess.Popen[bytes]] = []
        self._namespaces: list[str] = []

    def ns(self, host: str) -> str:
        return self.hub if host == "hub" else f"tl-{self._tag}-{host}"

    def open(self, *hosts: str) -> Network:
        _run("ip", "netns", "add", self.hub)
        self._namespaces.append(self.hub)
        self._in("hub", "ip", "link", "set", "lo", "up")
        self._in("hub", "ip", "link", "add", "br0", "type", "bridge")
        self._in("hub", "ip", "addr", "add", f"{HUB}/{SUBNET}", "dev", "br0")
        self._in("hub", "ip", "link", "set", "br0", "up")
        for n, host in enumerate(hosts, start=2):
            ns, address = self.ns(host), f"10.213.0.{n}"
            _run("ip", "netns", "add", ns)
            self._namespaces.append(ns)
            port = f"v{self._tag}{n}"  # the hub's end, at most 15 characters
            self._in("hub", "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self._in("hub", "ip", "link", "set", port, "master", "br0", "up")
            self._in(host, "ip", "link", "set", "lo", "up")
            self._in(host, "ip", "addr", "add", f"{address}/{SUBNET}", "dev", "eth0")
            self._in(host, "ip", "link", "set", "eth0", "up")
            self.hosts[host] = address
        return self

    def _in(self, host: str, *argv: str) -> str:
        return _run("ip", "netns", "exec", self.ns(host), *argv)

    def start(self, host: str, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """A process on ``host``, its output to ``log``; stopped by its PID at ``close``."""
        with log.open("ab") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", self.ns(host), *argv], env={**os.environ, **env},
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def run(self, host: str, argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.ns(host), *argv], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=timeout)

    # -- faults -------------------------------------------------------------------------------

    def cut(self, host: str, port: int) -> None:
        """Drop every packet between ``host`` and the hub's ``port``, both ways: connections hang, as on a
        network that fails rather than refuses."""
        for chain, way in (("OUTPUT", "--dport"), ("INPUT", "--sport")):
            self._in(host, "iptables", "-A", chain, "-p", "tcp", "-s" if chain == "INPUT" else "-d", HUB, way,
                     str(port), "-j", "DROP")

    def mend(self, host: str) -> None:
        for chain in ("OUTPUT", "INPUT"):
            self._in(host, "iptables", "-F", chain)

    def lossy(self, host: str, percent: int) -> None:
        """Lose ``percent`` of the packets ``host`` sends to the hub, at random. ``tc netem`` where the kernel has
        it; else iptables' statistic match, which drops the same way (this machine's kernel has no netem)."""
        try:
            self._in(host, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", f"{percent}%")
        except RuntimeError:
            self._in(host, "iptables", "-A", "OUTPUT", "-d", HUB, "-m", "statistic", "--mode", "random",
                     "--probability", f"{percent / 100:.2f}", "-j", "DROP")

    # -- the end ------------------------------------------------------------------------------

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM, by its PID (SIGCONT first: a stopped process would not hear it); SIGKILL after 20 s."""
        if proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, signal.SIGCONT)
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        for proc in reversed(self.procs):  # the workers before the broker they would wait for
            self.stop(proc)
        for ns in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._namespaces.clear()
