"""Host capabilities within cgroup/affinity limits, the TETRYX stdout line protocol, capped logs."""

from __future__ import annotations

import asyncio
import os

import pytest

from lynx_runner import host
from lynx_runner.config import RunnerConfig
from lynx_runner.streams import BadTelemetryLine, CappedLog, parse_telemetry_line


def test_capabilities_respect_affinity_and_report_the_host():
    caps = host.host_capabilities(RunnerConfig(max_concurrent_jobs=3, capabilities=("orbit",)))
    assert caps.cpu_cores == len(os.sched_getaffinity(0))
    assert 0 < caps.memory_gb <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 + 0.1
    assert caps.max_concurrent_jobs == 3
    assert list(caps.supported_simulation_types) == ["orbit"]


def test_cpu_cores_follow_the_affinity_mask():
    original = os.sched_getaffinity(0)
    if len(original) < 2:
        pytest.skip("needs two CPUs")
    os.sched_setaffinity(0, {min(original)})
    try:
        assert host.usable_cpu_cores() == 1
    finally:
        os.sched_setaffinity(0, original)


def _fake_cgroup_v2(tmp_path, monkeypatch, memory_max: str, cpu_max: str):
    (tmp_path / "memory.max").write_text(memory_max + "\n")
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    cgroup_file = tmp_path / "self-cgroup"
    cgroup_file.write_text("0::/\n")
    real_read = host._read
    monkeypatch.setattr(host, "_read", lambda p: real_read(cgroup_file if str(p) == "/proc/self/cgroup" else p))
    monkeypatch.setattr(host, "CGROUP_ROOT", tmp_path)


def test_cgroup_v2_limits_cap_memory_and_cores(tmp_path, monkeypatch):
    _fake_cgroup_v2(tmp_path, monkeypatch, str(3 * 2**30), "150000 100000")
    assert host.cgroup_memory_limit(tmp_path) == 3 * 2**30
    assert host.cgroup_cpu_limit(tmp_path) == 1.5
    assert host.usable_memory_bytes() == 3 * 2**30  # below this machine's physical memory
    assert host.usable_cpu_cores() == min(2, len(os.sched_getaffinity(0)))


def test_unlimited_cgroup_leaves_the_host_values(tmp_path, monkeypatch):
    _fake_cgroup_v2(tmp_path, monkeypatch, "max", "max 100000")
    assert host.cgroup_memory_limit(tmp_path) is None
    assert host.cgroup_cpu_limit(tmp_path) is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("TETRYX 1000 x=1", (1000, {"x": 1.0})),
        ("TETRYX 0 orbit.radius_km=6981.2 orbit.speed_m_s=7.5e3", (0, {"orbit.radius_km": 6981.2,
                                                                      "orbit.speed_m_s": 7500.0})),
        ("TETRYX 5 a=-2.5E-4 b=.5 c=1.", (5, {"a": -0.00025, "b": 0.5, "c": 1.0})),
        ("TETRYX   7   sc/pos[0]=3  ", (7, {"sc/pos[0]": 3.0})),
    ],
)
def test_telemetry_lines_parse(line, expected):
    assert parse_telemetry_line(line) == expected


@pytest.mark.parametrize(
    "line",
    ["TETRYX", "TETRYX 1000", "TETRYX now x=1", "TETRYX 1.5 x=1", "TETRYX 1 x", "TETRYX 1 x=abc",
     "TETRYX 1 x=nan", "TETRYX 1 x=inf", "TETRYX 1 9x=1", "TETRYX 1 x=__import__('os')", "tetryx 1 x=1"],
)
def test_bad_telemetry_lines_are_refused(line):
    with pytest.raises(BadTelemetryLine):
        parse_telemetry_line(line)


async def test_capped_log_keeps_head_tail_and_lines(tmp_path):
    seen: list[str] = []
    sink = CappedLog(tmp_path / "out.log", 2048, seen.append)
    read_fd, write_fd = os.pipe()
    pump = asyncio.create_task(sink.pump(read_fd))
    payload = b"first line\nTETRYX 1 x=1\n" + b"z" * 10_000 + b"\nTETRYX 2 x=2\nlast words"
    for i in range(0, len(payload), 777):  # arrives in pieces that split lines
        os.write(write_fd, payload[i:i + 777])
        await asyncio.sleep(0)
    os.close(write_fd)
    await asyncio.wait_for(pump, 5)
    text = (tmp_path / "out.log").read_bytes()
    assert text.startswith(b"first line\nTETRYX 1 x=1\n")
    assert b"log capped at 2048 bytes" in text
    assert len(text) < 2048 + 100
    assert seen == ["TETRYX 1 x=1", "TETRYX 2 x=2"]
    assert sink.tail_text(10) == "last words"


def test_group_memory_reads_the_process_tree_and_the_full_scan_finds_members_outside_it(tmp_path):
    """The frequent memory poll reads only the leader's descendants; the periodic full scan of /proc
    also finds a group member whose parent exited (re-parented out of the tree)."""
    import signal
    import subprocess
    import sys
    import time

    from lynx_runner.streams import group_rss_bytes

    ready = tmp_path / "ready"
    script = (
        "import os, sys, time\n"
        "blob = bytearray(80 * 2**20)\n"  # the leader: 80 MiB resident
        "for i in range(0, len(blob), 4096): blob[i] = 1\n"
        "if os.fork() == 0:\n"  # a child that stays: 40 MiB more of its own, in the tree
        "    b1 = bytearray(40 * 2**20)\n"
        "    for i in range(0, len(b1), 4096): b1[i] = 2\n"
        "    time.sleep(60)\n"
        "if os.fork() == 0:\n"  # a child that forks a 60 MiB grandchild and exits: it leaves the tree
        "    if os.fork() == 0:\n"
        "        b2 = bytearray(60 * 2**20)\n"
        "        for i in range(0, len(b2), 4096): b2[i] = 1\n"
        f"        open({str(ready)!r}, 'w').close()\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert time.monotonic() < deadline, "the grandchild never allocated"
            time.sleep(0.05)
        time.sleep(0.2)
        tree = group_rss_bytes(proc.pid, full_scan=False)
        full = group_rss_bytes(proc.pid, full_scan=True)
        # Resident set sizes count shared pages in each process: the leader has 80 MiB, its forked
        # child those 80 plus 40 of its own, the grandchild 80 plus 60.
        assert 200 * 2**20 <= tree < 280 * 2**20  # the leader and its child; the grandchild left the tree
        assert 140 * 2**20 <= full - tree < 200 * 2**20  # the scan finds the re-parented member
        assert group_rss_bytes(2**22 + 12345, full_scan=False) == 0  # no such group
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
