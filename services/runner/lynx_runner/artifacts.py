"""After a job ends, before its result is reported: its scalar outputs (summary.json) and the upload
of its output files to the scheduler's ArtifactService. Nothing here can lose the job: a failed
upload or an unreadable summary becomes a note on the result."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from lynx.artifacts.v1 import artifact_service_pb2 as apb
from lynx.artifacts.v1 import artifact_service_pb2_grpc as apb_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_runner.outputs import read_outputs

log = logging.getLogger(__name__)
CHUNK = 1 << 20
_MIN_DEADLINE_S = 30.0
_BYTES_PER_S = 5 << 20  # the slowest link a deadline allows for: 5 MiB/s
_GIVE_UP = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)  # the store or scheduler is down


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    """The file's content in CHUNK-sized pieces, read off the event loop."""
    f = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            yield chunk
    finally:
        await asyncio.to_thread(f.close)


def _read_small(path: Path) -> bytes:
    """A file of at most CHUNK bytes (as collected); a file that grew since is cut there, and the
    scheduler's size check refuses it as for any changed file."""
    with open(path, "rb") as f:
        return f.read(CHUNK + 1)


class ResultCompleter:
    """Adds outputs, artifacts and notes to a finished attempt's JobResult."""

    def __init__(
        self,
        stub: apb_grpc.ArtifactServiceStub | None,
        runner_id: str,
        output_root: Path,
        upload: bool = True,
        limit_bytes: int = 1 << 30,
    ) -> None:
        self.stub = stub
        self.runner_id = runner_id
        self.output_root = output_root
        self.upload = upload and stub is not None
        self.limit_bytes = limit_bytes

    async def complete(self, lease: pb.JobLease, result: pb.JobResult) -> None:
        """Fill result.outputs, result.artifacts and result.notes (never raises but on cancellation)."""
        if result.termination_reason == pb.TERMINATION_REASON_LAUNCH_ERROR:
            return  # the scenario never ran: no summary, no files
        try:
            output_dir = self.output_root.resolve() / lease.job_id
            outputs, notes = await asyncio.to_thread(read_outputs, output_dir, list(lease.outputs))
            result.outputs.extend(outputs)
            result.notes.extend(notes)
            if self.upload:
                artifacts, notes = await self.upload_files(lease, list(result.files))
                result.artifacts.extend(artifacts)
                result.notes.extend(notes)
        except Exception as exc:  # noqa: BLE001 - a note, never a lost result
            log.exception("job %s: collecting outputs failed", lease.job_id)
            result.notes.append(f"collecting outputs failed: {exc!r}")

    async def upload_files(self, lease: pb.JobLease, files: list[pb.OutputFile]) -> tuple[list[pb.Artifact], list[str]]:
        """Upload each file (in collect order) while the total stays within limit_bytes."""
        artifacts: list[pb.Artifact] = []
        notes: list[str] = []
        over: list[str] = []
        total = 0
        for i, f in enumerate(files):
            if total + f.size_bytes > self.limit_bytes:
                over.append(f.relative_path)
                continue
            try:
                artifacts.append(await self._upload(lease, f))
                total += f.size_bytes
            except grpc.aio.AioRpcError as exc:
                notes.append(f"{f.relative_path} was not uploaded: {exc.code().name}: {exc.details()}")
                if exc.code() in _GIVE_UP:
                    rest = len(files) - i - 1
                    if rest:
                        notes.append(f"{rest} more files were not uploaded (the artifact store is unreachable)")
                    break
            except OSError as exc:
                notes.append(f"{f.relative_path} was not uploaded: {exc}")
        if over:
            notes.append(
                f"{len(over)} files were not uploaded: over the artifact_upload_limit of"
                f" {self.limit_bytes} bytes per job ({', '.join(over[:5])}{', ...' if len(over) > 5 else ''})"
            )
        if notes:
            log.warning("job %s: %s", lease.job_id, "; ".join(notes))
        return artifacts, notes

    async def _upload(self, lease: pb.JobLease, f: pb.OutputFile) -> pb.Artifact:
        header = apb.UploadHeader(
            job_id=lease.job_id,
            attempt=lease.attempt,
            runner_id=self.runner_id,
            name=f.relative_path,
            size_bytes=f.size_bytes,
            sha256=f.sha256,
        )

        async def requests() -> AsyncIterator[apb.UploadRequest]:
            yield apb.UploadRequest(header=header)
            async for chunk in _chunks(Path(f.path)):
                yield apb.UploadRequest(chunk=chunk)

        deadline = _MIN_DEADLINE_S + f.size_bytes / _BYTES_PER_S
        if f.size_bytes <= CHUNK:  # most outputs: one read, one message list, no async generator
            content = await asyncio.to_thread(_read_small, Path(f.path))
            messages = [apb.UploadRequest(header=header)] + ([apb.UploadRequest(chunk=content)] if content else [])
            reply = await self.stub.Upload(iter(messages), timeout=deadline)
        else:
            reply = await self.stub.Upload(requests(), timeout=deadline)
        return reply.artifact
