"""Three hosts in network namespaces: the control plane in one, a runner in each of two others, the
test as the client host. TLS and tokens on; a study completes across them, and outsiders are refused."""

from __future__ import annotations

import hashlib
import ssl
import urllib.error
import urllib.request

import grpc
import pytest
from harness import FakeRunner, SecureStack, connect_error, metadata, runner_config, study
from netns import Hosts, unavailable

from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as tel_grpc
from lynx_cli import stack as lynx_stack

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no multi-host test: {REASON}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("hosts")
    with Hosts(["cp", "h1", "h2"]) as hosts:
        stack = SecureStack(root, host=hosts.addresses["cp"], runners=())
        for process in stack.procs.processes.values():
            process.argv = hosts.wrap("cp", process.argv)
        sampler = stack.procs["sampler"]  # on the control plane's loopback: ready once it says so
        sampler.ready = lynx_stack.log_says(sampler.log, "serving")
        try:
            stack.start()
            for host, runner_id in (("h1", "runner-1"), ("h2", "runner-2")):
                process = stack.procs.runner_process(lynx_stack.Runner(
                    runner_id, config=runner_config(root, runner_id),
                    env={"LYNX_TOKEN": stack.token("runner", runner_id), "SEC_SLEEP": "1"}))
                process.argv = hosts.wrap(host, process.argv)
                stack.procs.add(process)
            yield stack, hosts
        finally:
            stack.stop()


def test_a_study_completes_across_hosts_with_results_and_telemetry(cluster):
    stack, hosts = cluster
    assert stack.ports.gateway_url.startswith(f"https://{hosts.addresses['cp']}:")
    reply = stack.http.ok("POST", "/jobs", study(runs=4))
    final = stack.http.wait_batch(reply["batch_id"])
    assert final["batch"]["status"] == "Completed", final
    jobs = stack.http.ok("GET", f"/batches/{reply['batch_id']}/jobs")["jobs"]
    assert {j["runner_id"] for j in jobs} == {"runner-1", "runner-2"}
    results = stack.http.ok("GET", f"/batches/{reply['batch_id']}/results")
    assert len(results) == 4 and all(r["success"] and r["output_files"] for r in results)
    for result in results:  # artifacts: uploaded from each runner host, downloaded from the control plane
        (artifact,) = [a for a in result["artifacts"] if a["name"] == "result.txt"]
        request = urllib.request.Request(f"{stack.ports.gateway_url}/jobs/{result['job_id']}/artifacts/result.txt",
                                         headers={"authorization": f"Bearer {stack.admin}"})
        with urllib.request.urlopen(request, timeout=30, context=stack.http.context) as reply:
            body = reply.read()
        assert hashlib.sha256(body).hexdigest() == artifact["sha256"] and body.startswith(b"sent 2 dropped 0")
    for job in jobs:  # telemetry went scenario -> runner host -> ingest on the control plane
        series = stack.http.ok("GET", f"/jobs/{job['job_id']}/telemetry")["series"]
        assert series["x"]["values"] == [1.0, 2.0]


def test_outsiders_are_refused_across_hosts(cluster):
    stack, _ = cluster
    assert stack.http.with_token(None).call("GET", "/batches")[0] == 401  # no token
    assert stack.http.with_token(stack.token("read")).call("POST", "/jobs", study())[0] == 403  # read token
    scheduler = stack.scheduler()
    wrong_id = connect_error(scheduler, stack.token("runner", "runner-9"), "runner-1")
    assert wrong_id.code() == grpc.StatusCode.PERMISSION_DENIED  # a runner token under another id
    with pytest.raises(urllib.error.URLError) as caught:  # a client without the CA
        urllib.request.urlopen(stack.ports.gateway_url + "/healthz", timeout=5, context=ssl.create_default_context())
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)
    with pytest.raises(grpc.RpcError) as rpc:
        tel_grpc.TelemetryServiceStub(stack.channel(stack.ports.telemetry_addr, ca=False)).Publish(
            iter([tel_pb.PublishRequest(job_id="j")]), metadata=metadata(stack.admin), timeout=5)
    assert rpc.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_runner_reporting_for_a_job_leased_to_another_is_refused(cluster):
    stack, _ = cluster
    reply = stack.http.ok("POST", "/jobs", study(runs=1))
    job = stack.running_job(reply["batch_id"])
    other = "runner-2" if job["runner_id"] == "runner-1" else "runner-1"
    # The other runner's own token, on a second connection of its own: it may not take over a live id ...
    token = stack.token("runner", other)
    assert connect_error(stack.scheduler(), token, other).code() == grpc.StatusCode.ALREADY_EXISTS
    # ... and a third runner that did register cannot report the job.
    forger = FakeRunner(stack.scheduler(), stack.token("runner", "runner-3"), "runner-3")
    assert forger.next().WhichOneof("message") == "registered"
    forger.send(pb.ConnectRequest(job_finished=pb.JobFinished(job_id=job["job_id"], attempt=1, result=pb.JobResult(
        job_id=job["job_id"], attempt=1, success=False, error_message="forged"))))
    ack = forger.next()
    assert ack.WhichOneof("message") == "ack" and not ack.ack.accepted
    forger.close()
    final = stack.http.wait_batch(reply["batch_id"])
    assert final["batch"]["status"] == "Completed"
    result = stack.http.ok("GET", f"/jobs/{job['job_id']}/results")
    assert result["success"] and result["error_message"] != "forged"
