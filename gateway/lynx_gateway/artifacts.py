"""GET /jobs/{id}/artifacts/{name}: a job's uploaded output file, streamed from the scheduler's
ArtifactService, with its content type, ETag (sha256) and single byte-range requests."""

from __future__ import annotations

import logging
import mimetypes
import re

import grpc
from aiohttp import web

from lynx.artifacts.v1 import artifact_service_pb2 as apb
from lynx.artifacts.v1 import artifact_service_pb2_grpc as apb_grpc
from lynx_common.objectstore import InvalidKey, check_key
from lynx_gateway.errors import error_response

log = logging.getLogger(__name__)
DEADLINE_S = 30.0
STREAM_DEADLINE_S = 3600.0
ROUTE = "/jobs/{id}/artifacts/{name:.*}"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class Unsatisfiable(ValueError):
    """A Range that selects no byte of the file."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) of a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range; None to send the whole
    file (no Range, several ranges or a syntax this route does not serve, as RFC 9110 allows)."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":  # the last n bytes
        n = int(last)
        if n == 0:
            raise Unsatisfiable(header)
        return max(0, size - n), size
    start = int(first)
    end = size if last == "" else min(size, int(last) + 1)
    if last != "" and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable(header)
    return start, end


class ArtifactRoutes:
    """The artifact route over the scheduler's channel (the gateway's, opened at start-up)."""

    def __init__(self, gateway) -> None:
        self.gateway = gateway

    @property
    def stub(self) -> apb_grpc.ArtifactServiceStub:
        return apb_grpc.ArtifactServiceStub(self.gateway.scheduler_channel)

    async def download(self, request: web.Request) -> web.StreamResponse:
        job_id, name = request.match_info["id"], request.match_info["name"]
        try:
            check_key(name)
        except InvalidKey as exc:
            return error_response(400, f"name is not a file name inside the job's outputs: {exc}", "name")
        stat = await self.stub.Stat(apb.StatRequest(job_id=job_id, name=name), timeout=DEADLINE_S)
        artifact = stat.artifact
        size = artifact.size_bytes
        etag = f'"{artifact.sha256}"'
        headers = {
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "Content-Type": mimetypes.guess_type(name)[0] or "application/octet-stream",
        }
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        try:
            selected = (
                None
                if request.headers.get("If-Range", etag) != etag
                else parse_range(request.headers.get("Range"), size)
            )
        except Unsatisfiable:
            return error_response(
                416,
                f"range {request.headers['Range']!r} is outside the file's {size} bytes",
                "Range",
                {"Content-Range": f"bytes */{size}"},
            )
        start, end = selected or (0, size)
        response = web.StreamResponse(status=206 if selected else 200, headers=headers)
        if selected:
            response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        response.content_length = end - start
        if request.method == "HEAD" or end == start:
            await response.prepare(request)
            await response.write_eof()
            return response
        call = self.stub.Download(
            apb.DownloadRequest(job_id=job_id, name=name, offset=start, length=end - start), timeout=STREAM_DEADLINE_S
        )
        first = True
        try:
            async for message in call:
                if first:  # errors before the first byte still become a JSON error
                    await response.prepare(request)
                    first = False
                await response.write(message.chunk)
        except grpc.aio.AioRpcError:
            if first:
                raise
            log.warning("artifact %s of job %s: the stream broke after it started", name, job_id)
            raise ConnectionResetError("artifact stream broke") from None
        if first:
            await response.prepare(request)
        await response.write_eof()
        return response


def add_routes(app: web.Application, gateway) -> None:
    """Register the artifact route on the gateway's application."""
    app.router.add_get(ROUTE, ArtifactRoutes(gateway).download)
