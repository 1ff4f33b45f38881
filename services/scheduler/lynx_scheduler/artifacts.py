"""ArtifactService on the scheduler's port: runners upload a job's output files into the artifact
store (only the runner holding the job's current attempt may), readers download or stat them.

Objects live under ``<batch_id>/<job_id>/<name>``; every name passes lynx_common.objectstore's
check_key, so nothing outside a job's own prefix can be written or read, whatever the name.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import tempfile
from collections.abc import AsyncIterator

import grpc

from lynx.artifacts.v1 import artifact_service_pb2 as apb
from lynx.artifacts.v1 import artifact_service_pb2_grpc as apb_grpc
from lynx.scheduler.v1 import scheduler_service_pb2 as pb
from lynx_common import security
from lynx_common.objectstore import InvalidKey, NotFound, ObjectStore, check_key
from lynx_common.status import abort_invalid
from lynx_scheduler import policy
from lynx_scheduler.rows import JobRow
from lynx_scheduler.store import Store

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # bytes per Download message (and the most an Upload chunk may carry, plus slack)
_IN_MEMORY = 8 << 20  # uploads up to this size are stored from memory, larger ones from a spooled file
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def object_key(job: JobRow, name: str) -> str:
    """The store key of a job's file; raises InvalidKey for a name that is not a safe relative path."""
    return check_key(f"{job.batch_id}/{job.job_id}/{check_key(name)}")


def recorded(job: JobRow, name: str) -> pb.Artifact | None:
    """The artifact `name` as the job's stored result lists it, if it does."""
    if not job.result:
        return None
    for artifact in pb.JobResult.FromString(job.result).artifacts:
        if artifact.name == name:
            return artifact
    return None


class ArtifactServicer(apb_grpc.ArtifactServiceServicer):
    """Checks who may write what, verifies what arrived, and moves bytes to and from the store."""

    def __init__(self, store: Store, objects: ObjectStore) -> None:
        self.store = store
        self.objects = objects

    async def _job(self, job_id: str, context) -> JobRow:
        if not job_id:
            await abort_invalid(context, "job_id", "is required")
        job = await self.store.get_job(job_id)
        if job is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"job {job_id!r} not found")
        return job

    async def _key(self, job: JobRow, name: str, context, field: str = "name") -> str:
        try:
            return object_key(job, name)
        except InvalidKey as exc:
            await abort_invalid(context, field, f"is not a file name inside the job's outputs: {exc}")

    async def Upload(self, request_iterator, context) -> apb.UploadResponse:
        """Store one file, or several of one job in a row, after checking the lease, each name, and
        the size and sha256 that arrived for each."""
        messages = aiter(request_iterator)
        first = await anext(messages, None)
        if first is None or first.WhichOneof("payload") != "header":
            await abort_invalid(context, "header", "must be the first message")
        lease = first.header
        job = await self._job(lease.job_id, context)
        caller = security.current_principal.get()
        if caller is not None and caller.runner_id and caller.runner_id != lease.runner_id:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"a token of runner {caller.runner_id!r} may not upload for runner {lease.runner_id!r}",
            )
        if not (job.status == policy.RUNNING and job.attempts == lease.attempt and job.runner_id == lease.runner_id):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"job {job.job_id} attempt {lease.attempt} is not leased to runner {lease.runner_id!r}",
            )
        stored: list[pb.Artifact] = []
        header: apb.UploadHeader | None = lease
        while header is not None:
            if (header.job_id, header.attempt, header.runner_id) != (lease.job_id, lease.attempt, lease.runner_id):
                await abort_invalid(context, "header", "every file of an upload must name the first file's job, "
                                                       "attempt and runner")
            artifact, header = await self._receive(job, header, messages, context)
            stored.append(artifact)
        return apb.UploadResponse(artifact=stored[0], artifacts=stored)

    async def _receive(self, job: JobRow, header: apb.UploadHeader, messages,
                       context) -> tuple[pb.Artifact, apb.UploadHeader | None]:
        """Read one file's chunks up to the next header (or the end), check and store it; the stored
        Artifact and the next file's header, if any."""
        key = await self._key(job, header.name, context, "header.name")
        if header.size_bytes < 0:
            await abort_invalid(context, "header.size_bytes", "must be >= 0")
        if not _SHA256.match(header.sha256):
            await abort_invalid(context, "header.sha256", "must be 64 lowercase hex digits")
        digest, size = hashlib.sha256(), 0
        buffered: list[bytes] = []  # the content while it fits in memory (no thread hop per chunk)
        spill = None  # a temporary file once it does not
        following = None
        try:
            async for message in messages:
                if message.WhichOneof("payload") == "header":
                    following = message.header
                    break
                chunk = message.chunk
                size += len(chunk)
                if size > header.size_bytes:
                    await abort_invalid(context, "chunk", f"more than header.size_bytes={header.size_bytes} arrived")
                digest.update(chunk)
                if spill is None and size <= _IN_MEMORY:
                    buffered.append(chunk)
                    continue
                if spill is None:
                    spill = await asyncio.to_thread(tempfile.TemporaryFile)
                    await asyncio.to_thread(spill.writelines, buffered)
                    buffered = []
                await asyncio.to_thread(spill.write, chunk)
            if size != header.size_bytes:
                await abort_invalid(context, "header.size_bytes", f"is {header.size_bytes} but {size} bytes arrived")
            if digest.hexdigest() != header.sha256:
                await abort_invalid(context, "header.sha256", f"does not match the content ({digest.hexdigest()})")
            try:
                if spill is None:
                    await asyncio.to_thread(self.objects.put, key, b"".join(buffered))
                else:
                    await asyncio.to_thread(self._put_spilled, key, spill)
            except Exception as exc:  # the store is down or refuses: the runner notes it and reports anyway
                log.warning("artifact store %s: cannot write %s: %s", self.objects.url, key, exc)
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"artifact store cannot write {key}: {exc}")
        finally:
            if spill is not None:
                spill.close()
        artifact = pb.Artifact(name=header.name, size_bytes=size, sha256=header.sha256, uri=self.objects.uri(key))
        return artifact, following

    def _put_spilled(self, key: str, spill) -> None:
        spill.seek(0)
        self.objects.put(key, iter(lambda: spill.read(CHUNK), b""))

    async def _recorded(self, request, context) -> tuple[str, pb.Artifact]:
        job = await self._job(request.job_id, context)
        key = await self._key(job, request.name, context)
        artifact = recorded(job, request.name)
        if artifact is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"job {job.job_id} has no artifact {request.name!r}")
        return key, artifact

    async def Stat(self, request: apb.StatRequest, context) -> apb.StatResponse:
        """The artifact as the job's result records it (NOT_FOUND when the result lists no such file)."""
        _, artifact = await self._recorded(request, context)
        return apb.StatResponse(artifact=artifact)

    async def Download(self, request: apb.DownloadRequest, context) -> AsyncIterator[apb.DownloadResponse]:
        """The file's bytes [offset, offset + length) in chunks; the first message describes the file."""
        key, artifact = await self._recorded(request, context)
        if request.offset < 0 or request.offset > artifact.size_bytes:
            await context.abort(
                grpc.StatusCode.OUT_OF_RANGE, f"offset {request.offset} is outside 0..{artifact.size_bytes}"
            )
        if request.length < 0:
            await abort_invalid(context, "length", "must be >= 0")
        end = artifact.size_bytes if request.length == 0 else min(artifact.size_bytes, request.offset + request.length)
        first = True
        try:
            if request.offset == end:
                yield apb.DownloadResponse(artifact=artifact)
                return
            async for chunk in self.objects.aiter_range(key, request.offset, end, CHUNK):
                yield apb.DownloadResponse(artifact=artifact if first else None, chunk=chunk)
                first = False
        except NotFound:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"artifact {request.name!r} is no longer in the store")
        except Exception as exc:  # the store is down: say so rather than a bare UNKNOWN
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"artifact store cannot read {key}: {exc}")
