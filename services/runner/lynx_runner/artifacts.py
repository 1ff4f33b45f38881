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


BATCH_BYTES = 8 << 20  # small files sent in one Upload stream, at most this many bytes ...
BATCH_FILES = 64  # ... and this many files


def _batches(files: list[pb.OutputFile]) -> list[list[pb.OutputFile]]:
    """Consecutive small files (at most CHUNK bytes each) grouped up to BATCH_BYTES and BATCH_FILES;
    a larger file is a batch of its own. Order is kept."""
    batches: list[list[pb.OutputFile]] = []
    current: list[pb.OutputFile] = []
    size = 0
    for f in files:
        if f.size_bytes > CHUNK:
            if current:
                batches.append(current)
                current, size = [], 0
            batches.append([f])
            continue
        if current and (size + f.size_bytes > BATCH_BYTES or len(current) >= BATCH_FILES):
            batches.append(current)
            current, size = [], 0
        current.append(f)
        size += f.size_bytes
    if current:
        batches.append(current)
    return batches


def _unreachable(exc: Exception) -> bool:
    """Whether an upload failed because the scheduler or its store cannot be reached (so stop trying)."""
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in _GIVE_UP


def _not_uploaded(files: list[pb.OutputFile], exc: Exception) -> str:
    """The note for files that were not uploaded, with the gRPC status or the OS error."""
    names = ", ".join(f.relative_path for f in files)
    why = f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
    return f"{names} {'was' if len(files) == 1 else 'were'} not uploaded: {why}"


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
        """Upload the files (in collect order) while their total stays within limit_bytes: small
        files several to a stream, a large one alone. A stream refused for any other reason than an
        unreachable store is retried file by file, so each refused file gets its own note."""
        artifacts: list[pb.Artifact] = []
        notes: list[str] = []
        over: list[str] = []
        chosen: list[pb.OutputFile] = []
        total = 0
        for f in files:
            if total + f.size_bytes > self.limit_bytes:
                over.append(f.relative_path)
                continue
            chosen.append(f)
            total += f.size_bytes
        batches = _batches(chosen)
        for i, batch in enumerate(batches):
            try:
                artifacts.extend(await self._upload_batch(lease, batch))
                continue
            except (grpc.aio.AioRpcError, OSError) as exc:
                failure = exc
            if len(batch) == 1 or _unreachable(failure):
                notes.append(_not_uploaded(batch, failure))
                untried = 0 if _unreachable(failure) else None
            else:
                untried = await self._upload_each(lease, batch, artifacts, notes)
            if untried is not None:  # the store is unreachable: the rest is not tried
                rest = untried + sum(len(b) for b in batches[i + 1:])
                if rest:
                    notes.append(f"{rest} more files were not uploaded (the artifact store is unreachable)")
                break
        if over:
            notes.append(
                f"{len(over)} files were not uploaded: over the artifact_upload_limit of"
                f" {self.limit_bytes} bytes per job ({', '.join(over[:5])}{', ...' if len(over) > 5 else ''})"
            )
        if notes:
            log.warning("job %s: %s", lease.job_id, "; ".join(notes))
        return artifacts, notes

    async def _upload_each(self, lease: pb.JobLease, batch: list[pb.OutputFile], artifacts: list[pb.Artifact],
                           notes: list[str]) -> int | None:
        """Upload a refused batch file by file, noting each failure; when the store becomes unreachable,
        how many of the batch's files were left untried (else None)."""
        for j, f in enumerate(batch):
            try:
                artifacts.append(await self._upload(lease, f))
            except (grpc.aio.AioRpcError, OSError) as exc:
                notes.append(_not_uploaded([f], exc))
                if _unreachable(exc):
                    return len(batch) - j - 1
        return None

    async def _upload_batch(self, lease: pb.JobLease, batch: list[pb.OutputFile]) -> list[pb.Artifact]:
        """One Upload stream: a large file alone, or several small ones (one read each, off the loop)."""
        if len(batch) == 1:
            return [await self._upload(lease, batch[0])]
        contents = await asyncio.to_thread(lambda: [_read_small(Path(f.path)) for f in batch])
        messages: list[apb.UploadRequest] = []
        for f, content in zip(batch, contents, strict=True):
            messages.append(apb.UploadRequest(header=self._header(lease, f)))
            if content:
                messages.append(apb.UploadRequest(chunk=content))
        size = sum(f.size_bytes for f in batch)
        reply = await self.stub.Upload(iter(messages), timeout=_MIN_DEADLINE_S + size / _BYTES_PER_S)
        if len(reply.artifacts) != len(batch):  # a scheduler that stores one file per stream
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNIMPLEMENTED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       details="the scheduler stored only the first file of the stream")
        return list(reply.artifacts)

    def _header(self, lease: pb.JobLease, f: pb.OutputFile) -> apb.UploadHeader:
        return apb.UploadHeader(
            job_id=lease.job_id,
            attempt=lease.attempt,
            runner_id=self.runner_id,
            name=f.relative_path,
            size_bytes=f.size_bytes,
            sha256=f.sha256,
        )

    async def _upload(self, lease: pb.JobLease, f: pb.OutputFile) -> pb.Artifact:
        header = self._header(lease, f)

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
