"""Security without the whole stack: the per-job telemetry endpoint's secret, a runner id that cannot
be taken over without auth, the loopback rule, and mutual TLS. Real servers and processes throughout."""

from __future__ import annotations

import asyncio
import queue
import subprocess
import sys
import textwrap

import grpc
import pytest
from harness import REPO, FakeRunner, connect_error, study

from lynx.common.v1 import batch_config_pb2 as cfg
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as tel_grpc
from lynx_cli import stack as lynx_stack
from lynx_common import security, tls
from lynx_common.server import GrpcServer
from lynx_gateway.convert import config_from_json
from lynx_runner.endpoint import JobTelemetryServicer, job_secret, telemetry_url
from lynx_runner.relay import TelemetryRelay
from lynx_runner.watchdog import Watchdog

SERVICE = tel_pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name


class NoIngest:
    """The relay's ingest stub: keeps nothing (these tests look at the endpoint only)."""

    def Publish(self, *args, **kwargs):  # noqa: N802 - the stub's method name
        raise grpc.RpcError()


async def test_the_per_job_endpoint_takes_samples_only_with_the_jobs_secret():
    """The probe killed a job with one sample sent to its endpoint (found with `ss -ltnp`)."""
    early = cfg.EarlyTermination(enabled=True, conditions=[cfg.TerminationCondition(variable="x", condition="> 10")])
    watchdog = Watchdog(early)
    relay = TelemetryRelay(NoIngest(), "job-1", "batch-1", cfg.TelemetryConfig(sampling_rate_hz=1, variables=["x"]))
    secret = job_secret()
    servicer = JobTelemetryServicer(watchdog, relay, secret)
    endpoint = GrpcServer(lambda s: tel_grpc.add_TelemetryServiceServicer_to_server(servicer, s), [SERVICE])
    await endpoint.start()
    try:
        async with grpc.aio.insecure_channel(endpoint.address) as channel:
            stub = tel_grpc.TelemetryServiceStub(channel)
            breach = tel_pb.PublishRequest(job_id="job-1", samples=[tel_pb.TelemetrySample(timestamp_ns=1,
                                                                                           values={"x": 99.0})])
            for token in (None, "guess"):
                with pytest.raises(grpc.aio.AioRpcError) as rpc:
                    await stub.Publish(iter([breach]), metadata=(("authorization", f"Bearer {token}"),) if token
                                       else None, timeout=5)
                assert rpc.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert watchdog.check() is None and servicer.received == 0  # the job lives on

        # The job's own scenario, through the client library and TETRYX_TELEMETRY_URL, is heard.
        code = textwrap.dedent("""
            import sys
            from lynx_telemetry_client import telemetry_client_from_env
            client = telemetry_client_from_env()
            client.send({"x": 1.0}, timestamp_ns=5)
            client.close()
            print(client.sent, client.dropped)
        """)
        env = {"TETRYX_TELEMETRY_URL": telemetry_url(endpoint.address, secret),
               "PYTHONPATH": f"{REPO / 'clients' / 'python'}"}
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", code, env=env, stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert out.split() == [b"1", b"0"], err.decode()
        assert servicer.received == 1
    finally:
        await endpoint.stop(0)


@pytest.fixture(scope="module")
def plain_scheduler(tmp_path_factory):
    """A sampler and scheduler without TLS or auth, as `lynx up` starts them on loopback."""
    stack = lynx_stack.Stack(tmp_path_factory.mktemp("plain"), lynx_stack.Ports(0, 0, 0, 0),
                             services=("sampler", "scheduler"), cwd=REPO, ready_timeout=60)
    with stack:
        yield stack


def test_without_auth_a_second_runner_cannot_take_over_a_live_runner_id(plain_scheduler):
    """The probe's impersonation: registering under a live runner's id made the scheduler kill its job."""
    stub = pb_grpc.SchedulerServiceStub(grpc.insecure_channel(plain_scheduler.ports.scheduler_addr))
    real = FakeRunner(stub, None, "real-runner", slots=1)
    assert real.next().WhichOneof("message") == "registered"
    stub.SubmitBatch(pb.SubmitBatchRequest(name="x", runs_override=1, config=config_from_json(study(1)["config"])),
                     timeout=30)
    lease = real.next().lease
    real.send(pb.ConnectRequest(job_started=pb.JobStarted(job_id=lease.job_id, attempt=lease.attempt)))

    refused = connect_error(stub, None, "real-runner")
    assert refused.code() == grpc.StatusCode.ALREADY_EXISTS and "already connected" in refused.details()
    real.send(pb.ConnectRequest(heartbeat=pb.Heartbeat(running_jobs=[
        pb.RunningJob(job_id=lease.job_id, attempt=lease.attempt)])))
    with pytest.raises(queue.Empty):  # no CancelJob, no end of the real runner's stream
        real.next(timeout=1.5)
    job = stub.GetJob(pb.GetJobRequest(job_id=lease.job_id), timeout=5).job
    assert job.status == pb.JOB_STATUS_RUNNING and job.runner_id == "real-runner"
    real.close()


def test_a_service_beyond_loopback_refuses_to_start_without_tls_and_auth():
    argv = [sys.executable, "-m", "lynx_sampler.server", "--host", "0.0.0.0", "--port", "0"]
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "refusing to listen on 0.0.0.0" in refused.stderr and "--insecure" in refused.stderr
    up = subprocess.run([sys.executable, "-m", "lynx_cli.main", "up", "--host", "0.0.0.0", "--data-dir",
                         "/nonexistent"], capture_output=True, text=True, timeout=60)
    assert up.returncode != 0 and "refusing to listen on 0.0.0.0" in up.stderr


def test_insecure_beyond_loopback_starts_but_says_so_loudly(tmp_path):
    log = tmp_path / "sampler.log"
    process = lynx_stack.Process("sampler", [sys.executable, "-m", "lynx_sampler.server", "--host", "0.0.0.0",
                                             "--port", str(lynx_stack.free_port()), "--insecure"], log, cwd=REPO)
    process.start()
    try:
        lynx_stack.wait_until(lynx_stack.log_says(log, "serving"), "sampler", 60, [process])
        assert "WARNING" in log.read_text() and "INSECURE" in log.read_text()
    finally:
        process.stop()


async def test_mutual_tls_refuses_a_client_without_a_certificate(tmp_path):
    files = tls.ensure_server_files(tmp_path)
    client = tls.issue(tmp_path, "runner-7", client=True)
    secure = security.ServerSecurity(files.cert, files.key, files.ca, require_client_cert=True)
    server = GrpcServer(lambda s: None, [], "127.0.0.1", 0, secure)
    await server.start()
    try:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        async def check(env) -> grpc.StatusCode:
            async with security.client_channel(server.address, token=None, env=env) as channel:
                try:
                    await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
                    return grpc.StatusCode.OK
                except grpc.aio.AioRpcError as exc:
                    return exc.code()

        assert await check({security.CA_ENV: str(files.ca)}) == grpc.StatusCode.UNAVAILABLE
        assert await check({security.CA_ENV: str(files.ca), security.CERT_ENV: str(client.cert),
                            security.KEY_ENV: str(client.key)}) == grpc.StatusCode.OK
    finally:
        await server.stop(0)


async def test_without_auth_the_gateway_still_refuses_cross_site_writes_and_foreign_hosts():
    """On loopback with no tokens, a web page the user visits must not submit or cancel batches."""
    from aiohttp.test_utils import TestClient, TestServer

    from lynx_gateway.server import build_app

    async with TestClient(TestServer(build_app("127.0.0.1:1", "127.0.0.1:1"))) as client:
        form = await client.post("/batches/b-1/cancel", data="x=1",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
        assert form.status == 415 and (await form.json())["error"]["field"] == "Content-Type"
        plain = await client.post("/jobs", data='{"name": "x"}', headers={"content-type": "text/plain"})
        assert plain.status == 415
        rebound = await client.get("/batches", headers={"Host": "attacker.example"})
        assert rebound.status == 400 and (await rebound.json())["error"]["field"] == "Host"
        assert (await client.get("/healthz")).status == 200
