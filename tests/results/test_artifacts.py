"""Artifacts: the runner uploads a job's files to the scheduler's ArtifactService, which checks the
lease and the content and writes them to a directory or an S3 bucket; they download whole or by range."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import grpc
import pytest
from aiohttp.test_utils import TestClient, TestServer
from results_harness import scheduler_at
from scheduler_harness import FakeRunnerHost, submit, tutorial_config

from lynx.artifacts.v1 import artifact_service_pb2 as apb
from lynx.artifacts.v1 import artifact_service_pb2_grpc as apb_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from lynx_cli.stack import Stack
from lynx_common.objectstore import NotFound
from lynx_common.server import client_channel
from lynx_gateway.server import build_app
from lynx_runner.artifacts import ResultCompleter
from lynx_runner.streams import collect_files

BIG = bytes(range(256)) * 9000  # 2.3 MB: several 1 MiB chunks each way


def write_outputs(output_root: Path, job_id: str) -> Path:
    out = output_root / job_id
    (out / "plots").mkdir(parents=True)
    (out / "summary.json").write_text('{"final_state": {"radius_km": 6900.0}, "decayed": false}')
    (out / "plots" / "orbit.bin").write_bytes(BIG)
    return out


async def download(stub, job_id: str, name: str, offset: int = 0, length: int = 0) -> tuple[pb.Artifact, bytes]:
    call = stub.artifacts.Download(
        apb.DownloadRequest(job_id=job_id, name=name, offset=offset, length=length), timeout=10
    )
    messages = [m async for m in call]
    return messages[0].artifact, b"".join(m.chunk for m in messages)


async def run_one_job_with_uploads(stub, tmp_path: Path) -> tuple[pb.JobLease, pb.JobResult]:
    """Lease a job to a fake runner, write its files, complete its result as the real runner does,
    and report it."""
    host = stub.runner("r1")
    await submit(stub, tutorial_config(), runs=1)
    lease = await host.next_lease()
    output_root = tmp_path / "runs"
    out = write_outputs(output_root, lease.job_id)
    collected = collect_files(out)
    result = pb.JobResult(success=True, output_files=collected.paths, files=collected.files)
    completer = ResultCompleter(stub.artifacts, "r1", output_root)
    await completer.complete(lease, result)
    host.outbox.put_nowait(
        pb.ConnectRequest(job_finished=pb.JobFinished(job_id=lease.job_id, attempt=lease.attempt, result=result))
    )
    await host.next_ack()
    return lease, result


@pytest.fixture(params=["file", "s3"])
def artifact_store(request, tmp_path) -> str:
    if request.param == "file":
        return f"file://{tmp_path / 'store'}"
    s3 = request.getfixturevalue("s3_env")
    return f"s3://{s3['make_bucket'](f'b-{uuid.uuid4().hex[:12]}')}/lynx/artifacts"


async def test_output_files_are_uploaded_and_download_after_the_runner_host_lost_them(tmp_path, artifact_store):
    async with scheduler_at(tmp_path, artifact_store) as stub:
        lease, result = await run_one_job_with_uploads(stub, tmp_path)
        assert {o.name for o in result.outputs} == {"final_state.radius_km", "decayed"}
        assert not result.notes
        by_name = {a.name: a for a in result.artifacts}
        assert set(by_name) == {"summary.json", "plots/orbit.bin"}
        orbit = by_name["plots/orbit.bin"]
        assert orbit.size_bytes == len(BIG) and orbit.sha256 == hashlib.sha256(BIG).hexdigest()
        assert orbit.uri == f"{artifact_store.rstrip('/')}/{lease.batch_id}/{lease.job_id}/plots/orbit.bin"
        for path in (tmp_path / "runs").rglob("*"):
            if path.is_file():
                path.unlink()  # the runner host's output_root is gone
        artifact, content = await download(stub, lease.job_id, "plots/orbit.bin")
        assert content == BIG and artifact == orbit
        _, part = await download(stub, lease.job_id, "plots/orbit.bin", offset=1_048_570, length=20)
        assert part == BIG[1_048_570:1_048_590]
        stat = await stub.artifacts.Stat(apb.StatRequest(job_id=lease.job_id, name="summary.json"), timeout=5)
        assert stat.artifact == by_name["summary.json"]
        job = (await stub.GetJob(pb.GetJobRequest(job_id=lease.job_id), timeout=5)).job
        assert list(job.result.artifacts) == list(result.artifacts)


async def test_unknown_job_or_name_is_not_found_and_a_traversal_name_is_invalid(tmp_path):
    async with scheduler_at(tmp_path) as stub:
        lease, _ = await run_one_job_with_uploads(stub, tmp_path)
        for job_id, name, code in [
            ("nope", "summary.json", grpc.StatusCode.NOT_FOUND),
            (lease.job_id, "other.json", grpc.StatusCode.NOT_FOUND),
            (lease.job_id, "../../etc/passwd", grpc.StatusCode.INVALID_ARGUMENT),
            (lease.job_id, "/etc/passwd", grpc.StatusCode.INVALID_ARGUMENT),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await download(stub, job_id, name)
            assert err.value.code() == code, (job_id, name)


def upload_messages(header: apb.UploadHeader, content: bytes):
    async def gen():
        yield apb.UploadRequest(header=header)
        yield apb.UploadRequest(chunk=content)

    return gen()


async def test_forged_traversal_and_corrupt_uploads_are_refused_and_nothing_is_written(tmp_path):
    async with scheduler_at(tmp_path) as stub:
        host = stub.runner("r1")
        await submit(stub, tutorial_config(), runs=1)
        lease = await host.next_lease()
        content = b"payload"
        good = dict(
            job_id=lease.job_id,
            attempt=lease.attempt,
            runner_id="r1",
            name="a.txt",
            size_bytes=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
        )
        cases = [
            (dict(runner_id="r2"), grpc.StatusCode.PERMISSION_DENIED, ""),
            (dict(attempt=lease.attempt + 1), grpc.StatusCode.PERMISSION_DENIED, ""),
            (dict(job_id="nope"), grpc.StatusCode.NOT_FOUND, ""),
            (dict(name="../../../escape.txt"), grpc.StatusCode.INVALID_ARGUMENT, "header.name"),
            (dict(name="a/../../b.txt"), grpc.StatusCode.INVALID_ARGUMENT, "header.name"),
            (dict(size_bytes=len(content) + 1), grpc.StatusCode.INVALID_ARGUMENT, "header.size_bytes"),
            (dict(sha256="0" * 64), grpc.StatusCode.INVALID_ARGUMENT, "header.sha256"),
        ]
        for change, code, field in cases:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.artifacts.Upload(upload_messages(apb.UploadHeader(**{**good, **change}), content), timeout=5)
            assert err.value.code() == code, change
            assert field in err.value.details()
        assert stub.objects.list() == []
        assert not list(tmp_path.glob("**/escape.txt")) and not list(tmp_path.glob("**/b.txt"))
        reply = await stub.artifacts.Upload(upload_messages(apb.UploadHeader(**good), content), timeout=5)
        assert stub.objects.get(f"{lease.batch_id}/{lease.job_id}/a.txt") == content
        assert reply.artifact.size_bytes == len(content)
        host.finish(lease, success=True)
        await host.next_ack()
        with pytest.raises(grpc.aio.AioRpcError) as late:  # the attempt is over: no more writes
            await stub.artifacts.Upload(upload_messages(apb.UploadHeader(**good), content), timeout=5)
        assert late.value.code() == grpc.StatusCode.PERMISSION_DENIED


class CountingArtifacts:
    """The real ArtifactService stub, counting the Upload streams it opens."""

    def __init__(self, stub) -> None:
        self.stub, self.uploads = stub, 0

    def Upload(self, *args, **kwargs):  # noqa: N802 - the stub's method name
        self.uploads += 1
        return self.stub.Upload(*args, **kwargs)


async def test_small_files_share_one_stream_and_a_refused_one_is_noted_alone(tmp_path):
    async with scheduler_at(tmp_path) as stub:
        host = stub.runner("r1")
        await submit(stub, tutorial_config(), runs=1)
        lease = await host.next_lease()
        out = tmp_path / "runs" / lease.job_id
        out.mkdir(parents=True)
        for name in ("a.txt", "b.txt", "c.txt"):
            (out / name).write_text(f"content of {name}\n")
        files = list(collect_files(out).files)
        counting = CountingArtifacts(stub.artifacts)
        artifacts, notes = await ResultCompleter(counting, "r1", tmp_path / "runs").upload_files(lease, files)
        assert [a.name for a in artifacts] == ["a.txt", "b.txt", "c.txt"] and notes == []
        assert counting.uploads == 1  # three files, one stream
        for a in artifacts:
            assert stub.objects.get(f"{lease.batch_id}/{lease.job_id}/{a.name}") == (out / a.name).read_bytes()

        (out / "b.txt").write_text("CHANGED after it was collected\n")  # its size and sha256 no longer match
        counting.uploads = 0
        artifacts, notes = await ResultCompleter(counting, "r1", tmp_path / "runs").upload_files(lease, files)
        assert [a.name for a in artifacts] == ["a.txt", "c.txt"]
        assert len(notes) == 1 and notes[0].startswith("b.txt was not uploaded: INVALID_ARGUMENT")
        assert counting.uploads == 4  # the shared stream was refused, then each file went alone


async def test_a_stream_of_several_files_must_stay_with_one_job_attempt_and_runner(tmp_path):
    async with scheduler_at(tmp_path) as stub:
        host = stub.runner("r1")
        await submit(stub, tutorial_config(), runs=1)
        lease = await host.next_lease()

        def header(name: str, content: bytes, **change) -> apb.UploadRequest:
            return apb.UploadRequest(header=apb.UploadHeader(**{
                **dict(job_id=lease.job_id, attempt=lease.attempt, runner_id="r1", name=name,
                       size_bytes=len(content), sha256=hashlib.sha256(content).hexdigest()), **change}))

        messages = [header("x.txt", b"x"), apb.UploadRequest(chunk=b"x"), header("empty.txt", b""),
                    header("y.txt", b"yy"), apb.UploadRequest(chunk=b"yy")]
        reply = await stub.artifacts.Upload(iter(messages), timeout=5)
        assert [(a.name, a.size_bytes) for a in reply.artifacts] == [("x.txt", 1), ("empty.txt", 0), ("y.txt", 2)]
        assert reply.artifact == reply.artifacts[0]
        assert stub.objects.get(f"{lease.batch_id}/{lease.job_id}/empty.txt") == b""
        for change in (dict(job_id="other"), dict(attempt=lease.attempt + 1), dict(runner_id="r2")):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.artifacts.Upload(iter([header("x.txt", b"x"), apb.UploadRequest(chunk=b"x"),
                                                  header("z.txt", b"z", **change), apb.UploadRequest(chunk=b"z")]),
                                            timeout=5)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, change
            assert "header" in err.value.details()
        with pytest.raises(NotFound):
            stub.objects.get(f"{lease.batch_id}/{lease.job_id}/z.txt")


async def test_an_unreachable_store_is_a_note_and_the_result_still_has_its_outputs(tmp_path):
    output_root = tmp_path / "runs"
    out = write_outputs(output_root, "job-1")
    collected = collect_files(out)
    result = pb.JobResult(success=True, output_files=collected.paths, files=collected.files)
    lease = pb.JobLease(job_id="job-1", batch_id="b", attempt=1)
    async with client_channel("127.0.0.1:1") as channel:  # nothing listens there
        await ResultCompleter(apb_grpc.ArtifactServiceStub(channel), "r1", output_root).complete(lease, result)
    assert {o.name for o in result.outputs} == {"final_state.radius_km", "decayed"}
    assert not result.artifacts and result.success
    assert result.notes[0].startswith("plots/orbit.bin was not uploaded: UNAVAILABLE")
    assert result.notes[1] == "1 more files were not uploaded (the artifact store is unreachable)"


async def test_upload_limit_and_switch(tmp_path):
    async with scheduler_at(tmp_path) as stub:
        host = stub.runner("r1")
        await submit(stub, tutorial_config(), runs=1)
        lease = await host.next_lease()
        out = write_outputs(tmp_path / "runs", lease.job_id)
        files = list(collect_files(out).files)
        limited = ResultCompleter(stub.artifacts, "r1", tmp_path / "runs", limit_bytes=1000)
        artifacts, notes = await limited.upload_files(lease, files)
        assert [a.name for a in artifacts] == ["summary.json"]
        assert notes == [
            "1 files were not uploaded: over the artifact_upload_limit of 1000 bytes per job (plots/orbit.bin)"
        ]
        result = pb.JobResult(success=True, files=files)
        await ResultCompleter(stub.artifacts, "r1", tmp_path / "runs", upload=False).complete(lease, result)
        assert not result.artifacts and len(result.outputs) == 2 and not result.notes


async def test_gateway_serves_outputs_artifacts_and_ranges_and_refuses_traversal(tmp_path):
    async with scheduler_at(tmp_path) as stub:
        lease, result = await run_one_job_with_uploads(stub, tmp_path)
        async with TestClient(TestServer(build_app(stub.address, "127.0.0.1:1"))) as http:
            body = await (await http.get(f"/jobs/{lease.job_id}/results")).json()
            assert body["outputs"] == {"final_state.radius_km": 6900.0, "decayed": False}
            orbit = {a["name"]: a for a in body["artifacts"]}["plots/orbit.bin"]
            assert orbit["size"] == len(BIG) and orbit["sha256"] == hashlib.sha256(BIG).hexdigest()
            assert body["notes"] == []
            (listed,) = await (await http.get(f"/batches/{lease.batch_id}/results")).json()
            assert listed["outputs"] == body["outputs"] and listed["artifacts"] == body["artifacts"]

            base = f"/jobs/{lease.job_id}/artifacts"
            whole = await http.get(f"{base}/plots/orbit.bin")
            assert whole.status == 200 and await whole.read() == BIG
            assert whole.headers["Content-Length"] == str(len(BIG))
            assert whole.headers["ETag"] == f'"{orbit["sha256"]}"' and whole.headers["Accept-Ranges"] == "bytes"
            summary = await http.get(f"{base}/summary.json")
            assert summary.headers["Content-Type"].startswith("application/json")
            assert json.loads(await summary.read())["final_state"]["radius_km"] == 6900.0

            part = await http.get(f"{base}/plots/orbit.bin", headers={"Range": "bytes=1048570-1048589"})
            assert part.status == 206 and await part.read() == BIG[1048570:1048590]
            assert part.headers["Content-Range"] == f"bytes 1048570-1048589/{len(BIG)}"
            tail = await http.get(f"{base}/plots/orbit.bin", headers={"Range": "bytes=-10"})
            assert tail.status == 206 and await tail.read() == BIG[-10:]
            beyond = await http.get(f"{base}/plots/orbit.bin", headers={"Range": f"bytes={len(BIG)}-"})
            assert beyond.status == 416 and beyond.headers["Content-Range"] == f"bytes */{len(BIG)}"
            cached = await http.get(f"{base}/plots/orbit.bin", headers={"If-None-Match": whole.headers["ETag"]})
            assert cached.status == 304

            for path, status in [
                (f"{base}/..%2f..%2fetc%2fpasswd", 400),
                (f"{base}/plots%2f..%2f..%2f..%2fscheduler.db", 400),
                (f"{base}/", 400),
                (f"{base}/nope.txt", 404),
                ("/jobs/no-such-job/artifacts/summary.json", 404),
            ]:
                reply = await http.get(path)
                assert reply.status == status, path
                assert (await reply.json())["error"]["message"]


async def test_scheduler_process_writes_to_s3_with_its_aws_environment(tmp_path, s3_server):
    """`lynx-scheduler --artifact-store s3://...` as its own process, credentials and endpoint from AWS_*."""
    bucket = s3_server["make_bucket"](f"b-{uuid.uuid4().hex[:12]}")
    stack = Stack(
        tmp_path / "stack",
        services=("sampler", "scheduler"),
        env=s3_server["env"],
        artifact_store=f"s3://{bucket}/studies",
    )
    stack.start()
    try:
        async with client_channel(stack.ports.scheduler_addr) as channel:
            stub = pb_grpc.SchedulerServiceStub(channel)
            stub.artifacts = apb_grpc.ArtifactServiceStub(channel)
            host = FakeRunnerHost(stub, "r1", 1)
            stub.runner = lambda *_: host
            try:
                lease, result = await run_one_job_with_uploads(stub, tmp_path)
            finally:
                await host.close()
            assert not result.notes and len(result.artifacts) == 2
            listed = s3_server["client"].list_objects_v2(Bucket=bucket)["Contents"]
            assert sorted(o["Key"] for o in listed) == [
                f"studies/{lease.batch_id}/{lease.job_id}/plots/orbit.bin",
                f"studies/{lease.batch_id}/{lease.job_id}/summary.json",
            ]
            _, content = await download(stub, lease.job_id, "plots/orbit.bin")
            assert content == BIG
    finally:
        stack.stop()
    assert not (tmp_path / "stack" / "artifacts").exists()  # nothing went to the default directory


async def test_a_file_larger_than_memory_spooling_is_stored_whole(tmp_path, artifact_store):
    """Past 8 MiB the scheduler spools an upload to disk and writes it in parts (multipart on S3)."""
    async with scheduler_at(tmp_path, artifact_store) as stub:
        host = stub.runner("r1")
        await submit(stub, tutorial_config(), runs=1)
        lease = await host.next_lease()
        out = tmp_path / "runs" / lease.job_id
        out.mkdir(parents=True)
        large = BIG * 4  # 9.2 MB
        (out / "large.bin").write_bytes(large)
        completer = ResultCompleter(stub.artifacts, "r1", tmp_path / "runs")
        artifacts, notes = await completer.upload_files(lease, list(collect_files(out).files))
        assert not notes and artifacts[0].size_bytes == len(large)
        key = f"{lease.batch_id}/{lease.job_id}/large.bin"
        assert hashlib.sha256(stub.objects.get(key)).hexdigest() == hashlib.sha256(large).hexdigest()
