"""What a process has cost so far, read from Linux's ``/proc``: for the benchmarks.

CPU time is the process's own (user + system, all its threads); memory is its resident set
now (``VmRSS``) and at its peak (``VmHWM``, the high-water mark the kernel keeps).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcStats", "stats_of"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ProcStats:
    cpu_s: float
    rss_mb: float
    peak_rss_mb: float


def stats_of(pid: int) -> ProcStats:
    """The process's CPU seconds so far and its memory now and at its peak, in MiB."""
    proc = Path("/proc") / str(pid)
    # Fields after the command's name (which may hold spaces and parentheses): utime is the 14th field, stime the 15th.
    fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / _TICKS
    status = dict(line.split(":", 1) for line in (proc / "status").read_text().splitlines() if ":" in line)
    kib = {name: int(status[name].split()[0]) for name in ("VmRSS", "VmHWM")}
    return ProcStats(cpu_s, kib["VmRSS"] / 1024, kib["VmHWM"] / 1024)
