"""What machine a benchmark ran on: /proc/cpuinfo fields and the CPU's model name (shared by the bench tools)."""
from __future__ import annotations

import platform


def cpuinfo() -> dict:
    """The first CPU's /proc/cpuinfo fields (empty where there is no /proc/cpuinfo)."""
    info: dict = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return info


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else platform.processor()."""
    return cpuinfo().get("model name") or platform.processor() or "unknown CPU"
