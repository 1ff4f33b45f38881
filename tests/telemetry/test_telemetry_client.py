"""The scenario telemetry client (`lynx_telemetry_client`) against a real gRPC endpoint.

The client is what a scenario imports: without TETRYX_TELEMETRY_URL it must do
nothing; with it, every sample must reach the runner's per-job Publish endpoint in
order, `send()` must never block or raise, and a scenario that simply exits must
still deliver what it sent. The endpoint here is a real grpc.aio server on port 0
implementing the TelemetryService Publish RPC (the role the runner plays for a
scenario: it receives samples without a job_id) and recording every request.
"""

from __future__ import annotations

import ast
import asyncio
import math
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
from pathlib import Path

import grpc
import pytest

import lynx_telemetry_client
from lynx.telemetry.v1 import telemetry_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as pb_grpc
from lynx_common.telemetry_blocks import iter_samples, sample_count
from lynx_telemetry_client import NullTelemetryClient, TelemetryClient, telemetry_client_from_env

ROOT = Path(__file__).resolve().parents[2]
CLIENT_DIR = ROOT / "clients/python"
PACKAGE_DIR = CLIENT_DIR / "lynx_telemetry_client"
ENV_VAR = "TETRYX_TELEMETRY_URL"


class RecordingEndpoint(pb_grpc.TelemetryServiceServicer):
    """Publish endpoint that keeps every request it receives, in arrival order."""

    def __init__(self) -> None:
        self.requests: list[pb.PublishRequest] = []
        self.streams = 0

    async def Publish(self, request_iterator, context) -> pb.PublishResponse:
        self.streams += 1
        accepted = 0
        async for request in request_iterator:
            self.requests.append(request)
            accepted += sample_count(request)
        return pb.PublishResponse(accepted_samples=accepted)

    def samples(self) -> list[tuple[int, dict[str, float]]]:
        """Every sample received (TelemetrySamples and columnar block rows), in order."""
        return [sample for r in self.requests for sample in iter_samples(r)]


@pytest.fixture
async def endpoint():
    recorder = RecordingEndpoint()
    server = grpc.aio.server()
    pb_grpc.add_TelemetryServiceServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    recorder.address = f"127.0.0.1:{port}"
    yield recorder
    await server.stop(0)


def dead_address() -> str:
    """host:port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


async def close(client) -> float:
    """Close the (blocking) client off the event loop the endpoint runs on; return seconds taken."""
    start = time.monotonic()
    await asyncio.to_thread(client.close)
    return time.monotonic() - start


async def run_python(
    code: str, env: dict[str, str], timeout: float = 60
) -> tuple[subprocess.CompletedProcess, float]:
    """Run `code` as a separate Python process (like a scenario); return its result and duration."""
    start = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", textwrap.dedent(code), env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    elapsed = time.monotonic() - start
    result = subprocess.CompletedProcess(["python", "-c"], proc.returncode, out.decode(), err.decode())
    return result, elapsed


# ---------------------------------------------------------------- delivery


async def test_every_sample_arrives_in_order_with_its_timestamp_and_values(endpoint):
    client = TelemetryClient(endpoint.address)
    expected = []
    for i in range(2_000):
        values = {"altitude_m": 400e3 + i * 0.5, "speed_m_s": 7660.0 - i / 8, "step": float(i)}
        client.send(values, timestamp_ns=1_000_000_000 * i + 7)
        expected.append((1_000_000_000 * i + 7, values))
    await close(client)
    # close() has flushed: everything is there as soon as it returns
    assert endpoint.samples() == expected
    assert endpoint.streams <= 2_000 // 100  # batched: a call carries hundreds of samples
    assert all(r.job_id == "" and r.batch_id == "" for r in endpoint.requests)
    assert client.sent == 2_000 and client.dropped == 0


async def test_integer_and_bool_values_arrive_as_floats_and_nan_is_passed_on(endpoint):
    client = TelemetryClient(endpoint.address)
    client.send({"count": 3, "flag": True, "ratio": 0.25, "bad": math.nan}, timestamp_ns=5)
    await close(client)
    [(ts, values)] = endpoint.samples()
    assert ts == 5
    assert values["count"] == 3.0 and values["flag"] == 1.0 and values["ratio"] == 0.25
    assert math.isnan(values["bad"])  # the runner/ingest decide what to do with it


async def test_send_without_timestamp_uses_the_wall_clock(endpoint):
    client = TelemetryClient(endpoint.address)
    before = time.time_ns()
    client.send({"x": 1.0})
    after = time.time_ns()
    await close(client)
    [(ts, _)] = endpoint.samples()
    assert before <= ts <= after


async def test_samples_from_several_threads_all_arrive_in_each_threads_order(endpoint):
    client = TelemetryClient(endpoint.address)

    def produce(thread: int) -> None:
        for i in range(1_000):
            client.send({f"t{thread}": float(i)}, timestamp_ns=i)

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    await close(client)
    samples = endpoint.samples()
    assert len(samples) == 4_000
    for n in range(4):
        mine = [values[f"t{n}"] for _, values in samples if f"t{n}" in values]
        assert mine == [float(i) for i in range(1_000)]


async def test_context_manager_flushes_on_exit(endpoint):
    def scenario() -> None:  # blocking on exit, so off the endpoint's event loop
        with TelemetryClient(endpoint.address) as client:
            for i in range(10):
                client.send({"x": float(i)}, timestamp_ns=i)

    await asyncio.to_thread(scenario)
    assert endpoint.samples() == [(i, {"x": float(i)}) for i in range(10)]


async def test_a_full_buffer_drops_new_samples_and_counts_them(endpoint):
    client = TelemetryClient(endpoint.address, max_buffered=4)
    for i in range(5_000):
        client.send({"x": float(i)}, timestamp_ns=i)
    await close(client)
    received = [ts for ts, _ in endpoint.samples()]
    assert client.dropped > 0
    assert len(received) == client.sent
    assert client.sent + client.dropped == 5_000
    assert received == sorted(set(received))  # in order, no duplicates


# ---------------------------------------------------------------- from the environment


@pytest.mark.parametrize("scheme", ["", "grpc://", "http://"])
async def test_client_from_env_delivers_to_the_url(endpoint, monkeypatch, scheme):
    monkeypatch.setenv(ENV_VAR, f"{scheme}{endpoint.address}" + ("/" if scheme == "http://" else ""))
    client = telemetry_client_from_env()
    assert isinstance(client, TelemetryClient)
    client.send({"x": 1.0}, timestamp_ns=42)
    await close(client)
    assert endpoint.samples() == [(42, {"x": 1.0})]


@pytest.mark.parametrize("value", [None, "", "   "])
def test_without_the_env_var_the_client_is_a_silent_no_op(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(ENV_VAR, value)
    threads_before = threading.active_count()
    client = telemetry_client_from_env()
    assert isinstance(client, NullTelemetryClient)
    start = time.monotonic()
    for i in range(10_000):
        assert client.send({"x": float(i)}, timestamp_ns=i) is None
    client.send({"x": "not a number"})
    client.send(None)
    client.flush()
    client.close()
    client.close()
    client.send({"x": 1.0})
    with client as same:
        same.send({"y": 2.0})
    assert time.monotonic() - start < 1.0
    assert threading.active_count() == threads_before  # no background thread, no connection
    assert client.sent == 0


# ---------------------------------------------------------------- never raise, never block


@pytest.mark.parametrize(
    "bad",
    [
        {"values": {"x": "fast"}},
        {"values": {"x": None}},
        {"values": {"x": [1.0, 2.0]}},
        {"values": None},
        {"values": 3.0},
        {"values": {"x": 1.0}, "timestamp_ns": "soon"},
        {"values": {"x": 1.0}, "timestamp_ns": math.nan},
        {"values": {"x": 10**400}},
        {"values": {"x": 1.0}, "timestamp_ns": math.inf},
        {"values": {1: 2.0}},
        {"values": {"x": 1.0}, "timestamp_ns": 2**64},
    ],
    ids=["str", "none", "list", "values-none", "values-float", "ts-str", "ts-nan", "huge-int-value",
         "infinite-timestamp", "int-variable-name", "timestamp-beyond-int64"],
)
async def test_unusable_samples_are_dropped_and_counted_and_the_rest_still_arrive(endpoint, bad):
    client = TelemetryClient(endpoint.address)
    client.send({"x": 0.0}, timestamp_ns=0)
    client.send(**bad)
    client.send({"x": 2.0}, timestamp_ns=2)
    await close(client)
    assert endpoint.samples() == [(0, {"x": 0.0}), (2, {"x": 2.0})]
    assert client.dropped == 1


async def test_send_after_close_is_ignored_silently(endpoint):
    client = TelemetryClient(endpoint.address)
    client.send({"x": 1.0}, timestamp_ns=1)
    await close(client)
    client.send({"x": 2.0}, timestamp_ns=2)
    await close(client)  # a second close is harmless
    assert endpoint.samples() == [(1, {"x": 1.0})]


def test_dead_endpoint_send_returns_fast_and_close_does_not_hang():
    client = TelemetryClient(dead_address())
    start = time.monotonic()
    for i in range(10_000):
        client.send({"x": float(i), "y": -float(i)}, timestamp_ns=i)
    sending = time.monotonic() - start
    assert sending < 2.0, f"10k sends took {sending:.2f} s"
    start = time.monotonic()
    client.close()
    assert time.monotonic() - start < 3.0
    client.send({"x": 1.0})  # after a failed stream and close: still silent


def test_dead_endpoint_counts_every_sample_as_dropped():
    client = TelemetryClient(dead_address())
    for i in range(10_000):
        client.send({"x": float(i)}, timestamp_ns=i)
    client.close()
    assert (client.sent, client.dropped) == (0, 10_000)


def test_samples_sent_after_the_stream_failed_are_counted_as_dropped():
    client = TelemetryClient(dead_address())
    time.sleep(1.0)  # connection refused: the stream fails within milliseconds
    for i in range(10_000):
        client.send({"x": float(i)}, timestamp_ns=i)
    client.close()
    assert client.dropped == 10_000


# ---------------------------------------------------------------- as a scenario uses it


SCENARIO = """
    from lynx_telemetry_client import telemetry_client_from_env

    telemetry = telemetry_client_from_env()
    for i in range(1000):
        telemetry.send({"r_m": 7.0e6 + i, "i": float(i)}, timestamp_ns=10_000_000_000 * i)
    print("done", type(telemetry).__name__)
    # no close(): the interpreter's exit must flush
"""


async def test_scenario_that_exits_without_close_delivers_everything(endpoint):
    env = {**os.environ, ENV_VAR: f"grpc://{endpoint.address}"}
    result, elapsed = await run_python(SCENARIO, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done TelemetryClient"
    assert "Traceback" not in result.stderr
    assert endpoint.samples() == [
        (10_000_000_000 * i, {"r_m": 7.0e6 + i, "i": float(i)}) for i in range(1000)
    ]


async def test_scenario_outside_lynx_runs_unchanged():
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    result, _ = await run_python(SCENARIO, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done NullTelemetryClient"
    assert result.stderr == ""


async def test_scenario_with_a_dead_endpoint_still_exits_promptly():
    env = {**os.environ, ENV_VAR: dead_address()}
    result, elapsed = await run_python(SCENARIO, env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 10.0


# ---------------------------------------------------------------- installable alone


def _imports(path: Path) -> list[tuple[int, str]]:
    """(relative level, module) of every import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_client_package_files_are_the_three_expected():
    files = sorted(p.name for p in PACKAGE_DIR.glob("*.py"))
    assert files == ["__init__.py", "_transport.py", "telemetry_service_pb2.py"]
    assert Path(lynx_telemetry_client.__file__).resolve().parent == PACKAGE_DIR.resolve()


@pytest.mark.parametrize("name", ["__init__.py", "_transport.py", "telemetry_service_pb2.py"])
def test_client_imports_only_stdlib_grpc_and_protobuf(name):
    for level, module in _imports(PACKAGE_DIR / name):
        if level:
            # relative imports must stay inside the package
            assert level == 1 and (module == "" or (PACKAGE_DIR / f"{module}.py").is_file()), module
            continue
        top = module.split(".")[0]
        allowed = top in sys.stdlib_module_names or top == "grpc"
        allowed = allowed or module.startswith("google.protobuf")
        assert allowed, f"{name} imports {module}, which the client does not depend on"


def test_client_relative_imports_name_modules_of_the_package():
    tree = ast.parse((PACKAGE_DIR / "__init__.py").read_text())
    names = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level
        for alias in node.names
    }
    assert names and all((PACKAGE_DIR / f"{n}.py").is_file() for n in names), names


def test_client_depends_on_exactly_grpcio_and_protobuf():
    deps = tomllib.loads((CLIENT_DIR / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.match(r"[A-Za-z0-9_.\-]+", d)[0].lower().replace("_", "-") for d in deps}
    assert names == {"grpcio", "protobuf"}


def test_client_protobuf_range_satisfies_its_generated_code():
    """The pb2 refuses to import on an older protobuf; the client must not allow one."""
    code = (PACKAGE_DIR / "telemetry_service_pb2.py").read_text()
    pattern = r"ValidateProtobufRuntimeVersion\(\s*\S+,\s*(\d+),\s*(\d+),\s*(\d+),"
    major, minor, patch = map(int, re.search(pattern, code).groups())
    deps = tomllib.loads((CLIENT_DIR / "pyproject.toml").read_text())["project"]["dependencies"]
    [protobuf] = [d for d in deps if d.lower().startswith("protobuf")]
    low = re.search(r">=\s*(\d+)\.(\d+)(?:\.(\d+))?", protobuf)
    high = re.search(r"<\s*(\d+)", protobuf)
    assert low and high, protobuf
    assert (int(low[1]), int(low[2]), int(low[3] or 0)) >= (major, minor, patch)
    assert int(high[1]) <= major + 1


def test_client_generated_code_is_byte_identical_to_gen_python():
    ours = (PACKAGE_DIR / "telemetry_service_pb2.py").read_bytes()
    generated = (ROOT / "gen/python/lynx/telemetry/v1/telemetry_service_pb2.py").read_bytes()
    assert ours == generated


def test_client_publish_path_is_the_services_publish_method():
    service = pb.DESCRIPTOR.services_by_name["TelemetryService"]
    method = service.methods_by_name["Publish"]
    assert method.client_streaming and not method.server_streaming
    assert lynx_telemetry_client.PUBLISH_METHOD == f"/{service.full_name}/{method.name}"


# ---------------------------------------------------------------- never slows the simulation


class StallingEndpoint(pb_grpc.TelemetryServiceServicer):
    """Publish endpoint that accepts a stream and then never answers (a wedged runner)."""

    def __init__(self) -> None:
        self.streams = 0
        self.release = asyncio.Event()

    async def Publish(self, request_iterator, context) -> pb.PublishResponse:
        self.streams += 1
        await self.release.wait()
        return pb.PublishResponse()


@pytest.fixture
async def stalling():
    servicer = StallingEndpoint()
    server = grpc.aio.server()
    pb_grpc.add_TelemetryServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    servicer.address = f"127.0.0.1:{port}"
    yield servicer
    servicer.release.set()
    await server.stop(0)


def test_100k_sends_to_an_unreachable_endpoint_are_quick_and_all_counted_as_dropped():
    client = TelemetryClient(dead_address())
    values = {f"v{k}": float(k) for k in range(6)}
    start = time.monotonic()
    for i in range(100_000):
        client.send(values, timestamp_ns=i)
    sending = time.monotonic() - start
    client.close()
    assert sending < 2.0, f"100k sends took {sending:.2f} s"
    assert (client.sent, client.dropped) == (0, 100_000)


async def test_send_returns_immediately_while_the_endpoint_stalls(stalling):
    client = TelemetryClient(stalling.address, max_buffered=1_000)

    def scenario() -> tuple[float, float]:
        client.send({"x": 0.0}, timestamp_ns=0)
        time.sleep(0.3)  # the first round is now stuck in a Publish that never answers
        worst, start = 0.0, time.monotonic()
        for i in range(1, 50_001):
            t0 = time.perf_counter()
            client.send({"x": float(i)}, timestamp_ns=i)
            worst = max(worst, time.perf_counter() - t0)
        return time.monotonic() - start, worst

    total, worst = await asyncio.to_thread(scenario)
    assert stalling.streams >= 1
    # a send that waited on the stuck stream would take its 10 s deadline; allow for a loaded machine
    assert total < 3.0, f"50k sends took {total:.2f} s against a stalled endpoint"
    assert worst < 0.5, f"one send took {worst * 1000:.0f} ms"
    closing = await asyncio.to_thread(lambda: _timed(lambda: client.close(timeout=1.0)))
    assert closing < 3.0, f"close took {closing:.2f} s"
    assert client.sent == 0 and client.dropped == 50_001  # the buffer overflowed, the rest was abandoned


def _timed(fn) -> float:
    start = time.monotonic()
    fn()
    return time.monotonic() - start


async def test_flush_delivers_everything_sent_before_it_without_closing(endpoint):
    client = TelemetryClient(endpoint.address, linger_s=5.0)  # only flush() can make it ship soon
    for i in range(300):
        client.send({"x": float(i)}, timestamp_ns=i)
    start = time.monotonic()
    assert await asyncio.to_thread(client.flush, 5.0) is True
    assert time.monotonic() - start < 2.0
    assert [ts for ts, _ in endpoint.samples()] == list(range(300))
    assert client.sent == 300
    client.send({"x": 300.0}, timestamp_ns=300)  # still open
    await close(client)
    assert len(endpoint.samples()) == 301


async def test_flush_against_a_stalled_endpoint_gives_up_after_its_timeout(stalling):
    client = TelemetryClient(stalling.address)
    client.send({"x": 1.0}, timestamp_ns=1)
    start = time.monotonic()
    assert await asyncio.to_thread(client.flush, 0.5) is False
    assert time.monotonic() - start < 2.0
    await asyncio.to_thread(client.close, 0.5)


async def test_the_cumulative_dropped_count_reaches_the_endpoint(endpoint):
    client = TelemetryClient(endpoint.address, max_buffered=10, linger_s=0.5)
    for i in range(1_000):  # the buffer holds 10: most of these are dropped in send()
        client.send({"x": float(i)}, timestamp_ns=i)
    await asyncio.to_thread(client.flush)
    client.send({"x": "bad"})  # dropped on the shipping thread, after the last good sample
    await close(client)
    reported = [r.dropped_samples for r in endpoint.requests]
    assert client.dropped >= 990
    assert reported == sorted(reported)  # cumulative
    assert reported[-1] == client.dropped  # the final count arrives, even with nothing left to send
    assert client.sent + client.dropped == 1_001


async def test_counts_stay_exact_when_many_threads_overflow_the_buffer(endpoint):
    client = TelemetryClient(endpoint.address, max_buffered=50)

    def produce(thread: int) -> None:
        for i in range(20_000):
            client.send({"x": float(i)}, timestamp_ns=thread * 100_000 + i)

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    await close(client)
    assert client.dropped > 0
    assert client.sent == len(endpoint.samples())
    assert client.sent + client.dropped == 80_000


async def test_the_caller_may_reuse_its_values_dict(endpoint):
    client = TelemetryClient(endpoint.address)
    state = {"x": 1.0}
    client.send(state, timestamp_ns=1)
    state["x"] = 2.0
    client.send(state, timestamp_ns=2)
    await close(client)
    assert endpoint.samples() == [(1, {"x": 1.0}), (2, {"x": 2.0})]


FORKING_SCENARIO = """
    import os, sys, threading
    import lynx_telemetry_client
    from lynx_telemetry_client import telemetry_client_from_env

    assert threading.active_count() == 1, "importing the client started a thread"
    assert "grpc" not in sys.modules, "importing the client imported grpc"
    pid = os.fork()  # like a pre-warmed runner process forking the scenario
    if pid == 0:
        client = telemetry_client_from_env()
        for i in range(100):
            client.send({"child": float(i)}, timestamp_ns=i)
        client.close()
        os._exit(0 if client.sent == 100 else 3)
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status))
"""


async def test_a_process_may_import_the_client_and_fork_before_creating_it(endpoint):
    env = {**os.environ, ENV_VAR: endpoint.address}
    result, _ = await run_python(FORKING_SCENARIO, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "child exit 0", result.stderr
    assert endpoint.samples() == [(i, {"child": float(i)}) for i in range(100)]


async def test_numpy_scalars_arrive_as_plain_numbers(endpoint):
    np = pytest.importorskip("numpy")
    client = TelemetryClient(endpoint.address)
    client.send({"r": np.float64(7000.5), "e": np.float32(0.25), "n": np.int64(3)}, timestamp_ns=np.int64(10))
    client.send({"x": 1.0}, timestamp_ns=20.0)  # a whole-number float timestamp is accepted
    await close(client)
    assert endpoint.samples() == [(10, {"r": 7000.5, "e": 0.25, "n": 3.0}), (20, {"x": 1.0})]
    assert client.dropped == 0


async def test_scenario_against_a_stalled_endpoint_exits_within_the_close_timeout(stalling):
    env = {**os.environ, ENV_VAR: stalling.address}
    result, elapsed = await run_python(SCENARIO, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done TelemetryClient"
    assert "Traceback" not in result.stderr
    assert stalling.streams >= 1
    assert elapsed < 12.0  # the exit hook waits 5 s, then gives up on the stream
