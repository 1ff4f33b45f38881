"""Fixtures of the fault tests: one sampler process per session, a scheduler process per test."""

from __future__ import annotations

import signal
import subprocess

import grpc
import pytest
from fault_harness import BIN, REPO, Stack

from lynx_cli.stack import free_port


@pytest.fixture(scope="session")
def sampler_addr(tmp_path_factory):
    """One sampler process for every fault test (it keeps no state)."""
    port = free_port()
    log = (tmp_path_factory.mktemp("sampler") / "sampler.log").open("wb")
    proc = subprocess.Popen([str(BIN / "lynx-sampler"), "--port", str(port)], cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    addr = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(addr)
    try:
        grpc.channel_ready_future(channel).result(timeout=30)
        yield addr
    finally:
        channel.close()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


@pytest.fixture
def stack(tmp_path, sampler_addr):
    """A scheduler process on a fresh data directory; tests add runners."""
    s = Stack(tmp_path, sampler_addr)
    s.start_scheduler()
    yield s
    s.close()
