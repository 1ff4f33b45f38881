"""A secured stack for the security tests: every service a real process with TLS and tokens
(lynx_cli.stack + lynx_cli.secure), runners whose scenario publishes telemetry, and clients that
talk to it the way an outsider would (HTTPS with or without a token, gRPC with or without one)."""

from __future__ import annotations

import json
import queue
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import yaml

from lynx.auth.v1 import auth_service_pb2 as auth_pb
from lynx.auth.v1 import auth_service_pb2_grpc as auth_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_cli import stack as lynx_stack
from lynx_cli.secure import StackSecurity

REPO = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).parent / "scenarios" / "publisher.py"
TERMINAL = (pb.BATCH_STATUS_COMPLETED, pb.BATCH_STATUS_FAILED, pb.BATCH_STATUS_CANCELLED)


def study(runs: int = 2, sim_type: str = "secure") -> dict:
    """A POST /jobs body: `runs` runs of the publisher scenario, telemetry variable x kept."""
    return {"name": "security", "runs_override": runs, "config": {
        "simulation": {"name": "security", "version": "1", "engine": "basilisk", "type": sim_type},
        "monte_carlo": {"runs": runs, "seed": 7, "sampling_method": "random"},
        "dispersions": {"x": {"distribution": {"type": "uniform", "min": 0.0, "max": 1.0}}},
        "telemetry": {"sampling_rate_hz": 1000, "variables": ["x"], "buffer_flush_interval_seconds": 0.2},
    }}


def runner_config(root: Path, runner_id: str, sim_type: str = "secure") -> Path:
    config = root / f"{runner_id}.yaml"
    config.write_text(yaml.safe_dump({
        "engines": ["basilisk"], "capabilities": [sim_type], "working_directory": str(REPO),
        "output_root": str(root / "runs" / runner_id), "python_executable": sys.executable,
        "basilisk_entrypoint": str(SCENARIO), "max_concurrent_jobs": 2, "heartbeat_interval_secs": 0.5,
        "warm_start": False,
    }))
    return config


class Https:
    """JSON over HTTPS to the gateway, as any client: `token` and `ca` are optional."""

    def __init__(self, base: str, ca: Path | None, token: str | None = None) -> None:
        self.base, self.token = base, token
        self.context = ssl.create_default_context(cafile=str(ca)) if ca else ssl.create_default_context()

    def with_token(self, token: str | None) -> Https:
        other = Https(self.base, None, token)
        other.context = self.context
        return other

    def call(self, method: str, path: str, body: object = None, headers: dict | None = None,
             raw: bytes | None = None) -> tuple[int, object]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = {"content-type": "application/json"}
        if self.token:
            hdrs["authorization"] = f"Bearer {self.token}"
        hdrs.update(headers or {})
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as reply:
                return reply.status, json.load(reply)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def ok(self, method: str, path: str, body: object = None) -> dict:
        status, reply = self.call(method, path, body)
        assert status == 200, (method, path, status, reply)
        return reply

    def wait_batch(self, batch_id: str, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            batch = self.ok("GET", f"/batches/{batch_id}")
            if batch["batch"]["status"] in ("Completed", "Failed", "Cancelled"):
                return batch
            assert time.monotonic() < deadline, f"batch {batch_id} not finished: {batch}"
            time.sleep(0.3)


class SecureStack:
    """sampler, telemetry-ingest, scheduler and gateway with TLS and tokens on, plus runners."""

    def __init__(self, root: Path, host: str = "127.0.0.1", runners: tuple[str, ...] = ("runner-a",)) -> None:
        self.root = root
        self.security = StackSecurity(tls=True, auth=True, host=host)
        self.procs = lynx_stack.Stack(root / "data", lynx_stack.Ports(0, 0, 0, 0), cwd=REPO, ready_timeout=60,
                                      stop_grace=5, security=self.security)
        self.ports = self.procs.ports
        self.ca = self.security.files.ca
        self.admin = self.security.admin_token
        self.http = Https(self.ports.gateway_url, self.ca, self.admin)
        self.runners = runners

    def start(self) -> None:
        self.procs.start()
        for runner_id in self.runners:
            self.add_runner(runner_id, self.admin)

    def add_runner(self, runner_id: str, token: str, wait: bool = True, **env: str) -> None:
        """A lynx-runner with `token` as its LYNX_TOKEN."""
        self.procs.add_runner(lynx_stack.Runner(runner_id, config=runner_config(self.root, runner_id),
                                                env={"LYNX_TOKEN": token, "SEC_SLEEP": "2", **env}), wait=wait)

    def token(self, role: str, runner_id: str = "") -> str:
        body = {"role": role, **({"runner_id": runner_id} if runner_id else {})}
        return self.http.ok("POST", "/tokens", body)["secret"]

    def channel(self, addr: str, ca: bool = True) -> grpc.Channel:
        if not ca:
            return grpc.secure_channel(addr, grpc.ssl_channel_credentials())  # the system's CAs only
        return grpc.secure_channel(addr, grpc.ssl_channel_credentials(self.ca.read_bytes()))

    def scheduler(self) -> pb_grpc.SchedulerServiceStub:
        return pb_grpc.SchedulerServiceStub(self.channel(self.ports.scheduler_addr))

    def auth(self) -> auth_grpc.AuthServiceStub:
        return auth_grpc.AuthServiceStub(self.channel(self.ports.scheduler_addr))

    def running_job(self, batch_id: str, timeout: float = 30) -> dict:
        """The first job of the batch seen Running."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for job in self.http.ok("GET", f"/batches/{batch_id}/jobs")["jobs"]:
                if job["status"] == "Running":
                    return job
            time.sleep(0.1)
        raise AssertionError(f"no job of {batch_id} started")

    def stop(self) -> None:
        self.procs.stop()


def metadata(token: str | None) -> tuple:
    return (("authorization", f"Bearer {token}"),) if token else ()


def register(runner_id: str, slots: int = 8, sim_type: str = "secure") -> pb.ConnectRequest:
    return pb.ConnectRequest(register=pb.RegisterRunner(
        runner_id=runner_id, name=runner_id, engines=["basilisk"], heartbeat_interval_secs=0.5,
        capabilities=pb.RunnerCapabilities(supported_simulation_types=[sim_type], max_concurrent_jobs=slots)))


def connect_error(stub: pb_grpc.SchedulerServiceStub, token: str | None, runner_id: str) -> grpc.RpcError | None:
    """Open Connect as `runner_id` with `token`; the error it fails with, or None once registered.
    It registers for a simulation type no study uses, so the scheduler never leases a job to this
    short-lived session (which a later test's job would otherwise wait out)."""
    call = stub.Connect(iter([register(runner_id, sim_type="registration-probe")]), metadata=metadata(token),
                        timeout=20)
    try:
        first = next(call)
    except grpc.RpcError as exc:
        return exc
    finally:
        call.cancel()
    assert first.WhichOneof("message") == "registered"
    return None


class FakeRunner:
    """A Connect stream held open by a test: send() messages, next() replies."""

    def __init__(self, stub, token: str | None, runner_id: str, slots: int = 0) -> None:
        self.requests: queue.Queue = queue.Queue()
        self.requests.put(register(runner_id, slots=slots))
        self.call = stub.Connect(iter(self.requests.get, None), metadata=metadata(token), timeout=30)
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for reply in self.call:
                self.replies.put(reply)
        except grpc.RpcError as exc:
            self.replies.put(exc)
        else:
            self.replies.put(None)  # the server ended the stream

    def send(self, message: pb.ConnectRequest) -> None:
        self.requests.put(message)

    def next(self, timeout: float = 20):
        return self.replies.get(timeout=timeout)

    def close(self) -> None:
        self.requests.put(None)
        self.call.cancel()


__all__ = ["auth_pb", "FakeRunner", "SecureStack", "Https", "study", "metadata", "register", "connect_error"]
