"""What this host offers, detected rather than configured, within cgroup and affinity limits."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_runner.config import RunnerConfig

CGROUP_ROOT = Path("/sys/fs/cgroup")
_UNLIMITED = 2**60  # cgroup v1 writes "no limit" as a huge page-aligned number


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_dirs(controller: str, root: Path | None = None) -> list[Path]:
    """The cgroup directories of this process for `controller` (v2 unified and v1), most specific first."""
    root = root or CGROUP_ROOT
    text = _read(Path("/proc/self/cgroup")) or ""
    dirs: list[Path] = []
    for line in text.splitlines():
        _, controllers, rel = line.split(":", 2)
        rel = rel.lstrip("/")
        if controllers == "":
            dirs += [root / rel, root]
        elif controller in controllers.split(","):
            first = root / controllers.split(",")[0]
            base = first if first.is_dir() else root / controller
            dirs += [base / rel, base]
    return [d for d in dirs if d.is_dir()]


def cgroup_memory_limit(root: Path | None = None) -> int | None:
    """Bytes allowed by memory.max (v2) or memory.limit_in_bytes (v1); None when unlimited or unknown."""
    for folder in _cgroup_dirs("memory", root):
        for name in ("memory.max", "memory.limit_in_bytes"):
            text = _read(folder / name)
            if text is None:
                continue
            if text == "max":
                return None
            try:
                value = int(text)
            except ValueError:
                continue
            return value if value < _UNLIMITED else None
    return None


def cgroup_cpu_limit(root: Path | None = None) -> float | None:
    """Cores allowed by cpu.max (v2) or cfs_quota/cfs_period (v1); None when unlimited or unknown."""
    for folder in _cgroup_dirs("cpu", root):
        text = _read(folder / "cpu.max")
        if text is not None:
            quota, _, period = text.partition(" ")
            if quota == "max":
                return None
            return int(quota) / int(period or 100000)
        quota_text, period_text = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if quota_text is not None and period_text is not None:
            quota = int(quota_text)
            return None if quota <= 0 else quota / int(period_text)
    return None


def usable_cpu_cores() -> int:
    """CPUs this process may run on (affinity), capped by a cgroup CPU quota (rounded up)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def usable_memory_bytes() -> int:
    """Physical memory, capped by a cgroup memory limit."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        physical = 0
    limit = cgroup_memory_limit()
    if limit is not None and (physical == 0 or limit < physical):
        return limit
    return physical


def gpu_available() -> bool:
    """An NVIDIA driver (nvidia-smi or /dev/nvidia0) is present."""
    return shutil.which("nvidia-smi") is not None or os.path.exists("/dev/nvidia0")


def host_capabilities(config: RunnerConfig) -> pb.RunnerCapabilities:
    """What this host offers, detected rather than configured."""
    return pb.RunnerCapabilities(
        max_concurrent_jobs=config.max_concurrent_jobs,
        supported_simulation_types=list(config.capabilities),
        gpu_available=gpu_available(),
        memory_gb=round(usable_memory_bytes() / 2**30, 1),
        cpu_cores=usable_cpu_cores(),
    )
