"""The probe's findings, each reproduced against a stack with TLS and tokens on and shown refused:
no auth/no TLS, rogue runner, runner impersonation, telemetry injection. The services keep serving
and the study's jobs all complete with their own results."""

from __future__ import annotations

import os
import sqlite3
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import grpc
import pytest
from harness import FakeRunner, SecureStack, auth_pb, connect_error, metadata, study

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as tel_grpc


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = SecureStack(tmp_path_factory.mktemp("secure"))
    try:
        s.start()
        yield s
    finally:
        s.stop()


def test_without_a_token_every_route_but_health_is_401(stack):
    anonymous = stack.http.with_token(None)
    status, body = anonymous.call("GET", "/batches")
    assert status == 401 and "token" in body["error"]["message"]
    assert anonymous.call("POST", "/jobs", study())[0] == 401
    assert anonymous.call("GET", "/healthz") == (200, {"status": "ok"})


def test_a_bad_or_revoked_token_is_401(stack):
    assert stack.http.with_token("lynx_not-a-token").call("GET", "/batches")[0] == 401
    created = stack.http.ok("POST", "/tokens", {"role": "read", "name": "short-lived"})
    reader = stack.http.with_token(created["secret"])
    assert reader.call("GET", "/batches")[0] == 200
    stack.http.ok("POST", f"/tokens/{created['token']['token_id']}/revoke", {})
    status, body = reader.call("GET", "/batches")
    assert status == 401 and "revoked" in body["error"]["message"]


def test_a_read_token_reads_but_cannot_submit_cancel_or_mint(stack):
    reader = stack.http.with_token(stack.token("read"))
    assert reader.call("GET", "/runners")[0] == 200
    for method, path, body in (("POST", "/jobs", study()), ("POST", "/batches/b-1/cancel", {}),
                               ("POST", "/tokens", {"role": "admin"})):
        status, reply = reader.call(method, path, body)
        assert status == 403, (path, status, reply)
        assert "read token may not" in reply["error"]["message"]


def test_a_web_page_cannot_submit_text_plain_or_through_another_host(stack):
    status, body = stack.http.call("POST", "/jobs", raw=b'{"name": "x"}', headers={"content-type": "text/plain"})
    assert status == 415 and body["error"]["field"] == "Content-Type"
    status, body = stack.http.call("GET", "/batches", headers={"Host": "evil.example:80"})
    assert status == 400 and body["error"]["field"] == "Host"


def test_plaintext_and_unverified_clients_are_refused(stack):
    with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP to the HTTPS port
        urllib.request.urlopen(stack.ports.gateway_url.replace("https", "http") + "/healthz", timeout=5)
    with pytest.raises(urllib.error.URLError) as caught:  # HTTPS without the private CA
        urllib.request.urlopen(stack.ports.gateway_url + "/healthz", timeout=5, context=ssl.create_default_context())
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)
    plain = pb_grpc_stub(grpc.insecure_channel(stack.ports.scheduler_addr))
    with pytest.raises(grpc.RpcError) as rpc:
        plain.ListBatches(pb.ListBatchesRequest(), metadata=metadata(stack.admin), timeout=5)
    assert rpc.value.code() == grpc.StatusCode.UNAVAILABLE
    unverified = pb_grpc_stub(stack.channel(stack.ports.scheduler_addr, ca=False))
    with pytest.raises(grpc.RpcError) as rpc:
        unverified.ListBatches(pb.ListBatchesRequest(), metadata=metadata(stack.admin), timeout=5)
    assert rpc.value.code() == grpc.StatusCode.UNAVAILABLE


def pb_grpc_stub(channel):
    from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc

    return pb_grpc.SchedulerServiceStub(channel)


def test_a_rogue_runner_cannot_register(stack):
    """The probe's rogue runner took every lease with 8 slots; without a runner token it gets none."""
    scheduler = stack.scheduler()
    assert connect_error(scheduler, None, "rogue").code() == grpc.StatusCode.UNAUTHENTICATED
    denied = connect_error(scheduler, stack.token("submit"), "rogue")
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED and "submit token" in denied.details()
    runners = stack.http.ok("GET", "/runners")["runners"]
    assert "rogue" not in {r["runner_id"] for r in runners}


def test_a_runner_token_registers_only_as_its_own_id(stack):
    token = stack.token("runner", "runner-b")
    denied = connect_error(stack.scheduler(), token, "runner-a")
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED and "runner-b" in denied.details()
    assert connect_error(stack.scheduler(), token, "runner-b") is None
    status, body = stack.http.call("POST", "/tokens", {"role": "runner"})
    assert status == 400 and body["error"]["field"] == "runner_id"


def test_tokens_are_stored_hashed_and_never_logged(stack):
    secret = stack.token("read")
    db = sqlite3.connect(stack.procs.data_dir / "scheduler.db")
    dump = "\n".join(db.iterdump())
    db.close()
    assert secret not in dump and stack.admin not in dump
    logs = "".join(p.read_text(errors="replace") for p in stack.procs.logs.glob("*.log"))
    assert secret not in logs and stack.admin not in logs


def test_impersonation_forged_reports_and_injected_telemetry_are_refused_and_no_job_is_lost(stack):
    reply = stack.http.ok("POST", "/jobs", {**study(runs=2)})
    job = stack.running_job(reply["batch_id"])
    assert job["runner_id"] == "runner-a"
    scheduler = stack.scheduler()

    # Impersonation: another token registering as the live runner-a is refused; runner-a keeps its job.
    impostor = connect_error(scheduler, stack.token("runner", "runner-a"), "runner-a")
    assert impostor.code() == grpc.StatusCode.ALREADY_EXISTS

    # A runner reporting for a job leased to another: not accepted, not applied.
    rogue = FakeRunner(scheduler, stack.token("runner", "rogue-1"), "rogue-1")
    assert rogue.next().WhichOneof("message") == "registered"
    rogue.send(pb.ConnectRequest(job_finished=pb.JobFinished(job_id=job["job_id"], attempt=1, result=pb.JobResult(
        job_id=job["job_id"], attempt=1, success=True, output_files=["/etc/passwd"]))))
    ack = rogue.next()
    assert ack.WhichOneof("message") == "ack" and not ack.ack.accepted

    # Telemetry injection into ingest: for another runner's job, for a job that does not exist, with a read token.
    ingest = tel_grpc.TelemetryServiceStub(stack.channel(stack.ports.telemetry_addr))
    sample = tel_pb.TelemetrySample(timestamp_ns=5, values={"x": 1e9})
    for token, job_id, code in ((stack.token("runner", "rogue-1"), job["job_id"], grpc.StatusCode.PERMISSION_DENIED),
                                (stack.token("runner", "rogue-1"), "no-such-job", grpc.StatusCode.PERMISSION_DENIED),
                                (stack.token("read"), job["job_id"], grpc.StatusCode.PERMISSION_DENIED),
                                (None, job["job_id"], grpc.StatusCode.UNAUTHENTICATED)):
        with pytest.raises(grpc.RpcError) as rpc:
            ingest.Publish(iter([tel_pb.PublishRequest(job_id=job_id, batch_id=job["batch_id"], samples=[sample])]),
                           metadata=metadata(token), timeout=20)
        assert rpc.value.code() == code, (job_id, rpc.value.details())
    rogue.close()

    # The study ends as if nothing happened: both jobs completed by runner-a with their own results and telemetry.
    final = stack.http.wait_batch(reply["batch_id"])
    assert final["batch"]["status"] == "Completed", final
    results = stack.http.ok("GET", f"/batches/{reply['batch_id']}/results")
    assert len(results) == 2 and all(r["success"] and "/etc/passwd" not in r["output_files"] for r in results)
    series = stack.http.ok("GET", f"/jobs/{job['job_id']}/telemetry")
    assert series["series"]["x"]["values"] == [1.0, 2.0], series  # the scenario's own two samples, nothing injected


def test_authenticate_answers_whether_a_runner_holds_a_job(stack):
    reply = stack.auth().Authenticate(auth_pb.AuthenticateRequest(secret="lynx_nope"), timeout=5)
    assert not reply.valid
    reply = stack.auth().Authenticate(auth_pb.AuthenticateRequest(secret=stack.admin), timeout=5)
    assert reply.valid and reply.token.role == auth_pb.ROLE_ADMIN


def test_lynx_token_create_prints_the_secret_alone_on_its_last_line(stack):
    env = {**os.environ, "LYNX_API_URL": stack.ports.gateway_url, "LYNX_TLS_CA": str(stack.ca),
           "LYNX_TOKEN": stack.admin}
    made = subprocess.run([sys.executable, "-m", "lynx_cli.main", "token", "create", "--role", "runner",
                           "--runner-id", "gpu-01"], env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("lynx_") and " " not in secret
    assert connect_error(stack.scheduler(), secret, "gpu-01") is None
    listed = subprocess.run([sys.executable, "-m", "lynx_cli.main", "runners"], env={**env, "LYNX_TOKEN": secret},
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 1 and "HTTP 403" in listed.stderr  # a runner token is not a reader


def test_revoking_a_runner_token_ends_its_stream_and_it_cannot_come_back(stack):
    created = stack.http.ok("POST", "/tokens", {"role": "runner", "runner_id": "runner-r"})
    runner = FakeRunner(stack.scheduler(), created["secret"], "runner-r")
    assert runner.next().WhichOneof("message") == "registered"
    stack.http.ok("POST", f"/tokens/{created['token']['token_id']}/revoke", {})
    ended = runner.next()
    assert isinstance(ended, grpc.RpcError) or ended is None, ended
    runner.close()
    again = connect_error(stack.scheduler(), created["secret"], "runner-r")
    assert again.code() == grpc.StatusCode.UNAUTHENTICATED
