"""What this host offers, detected rather than configured."""

from __future__ import annotations

import os
import shutil

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_runner.config import RunnerConfig


def host_capabilities(config: RunnerConfig) -> pb.RunnerCapabilities:
    """What this host offers, detected rather than configured."""
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        memory_gb = 0.0
    gpu = shutil.which("nvidia-smi") is not None or os.path.exists("/dev/nvidia0")
    return pb.RunnerCapabilities(
        max_concurrent_jobs=config.max_concurrent_jobs,
        supported_simulation_types=list(config.capabilities),
        gpu_available=gpu,
        memory_gb=round(memory_gb, 1),
        cpu_cores=os.cpu_count() or 1,
    )
