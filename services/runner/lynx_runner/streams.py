"""A job's stdout/stderr (size-capped logs, stderr tail, the TETRYX line protocol) and its output files."""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lynx.scheduler.v1 import scheduler_service_pb2 as sched_pb
from lynx_runner.orphans import stat_fields

TAIL_BYTES = 4096
MAX_LINE = 64 * 1024  # a longer stdout line is logged but never parsed as telemetry
LINE_PREFIX = b"TETRYX "
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/\-\[\]]*")


class BadTelemetryLine(ValueError):
    """A line that starts with TETRYX but does not follow the protocol."""


def parse_telemetry_line(line: str) -> tuple[int, dict[str, float]]:
    """Parse ``TETRYX <timestamp_ns> name=value [name=value ...]`` (values finite floats, no eval)."""
    parts = line.split()
    if len(parts) < 3 or parts[0] != "TETRYX":
        raise BadTelemetryLine("expected: TETRYX <timestamp_ns> name=value [name=value ...]")
    try:
        timestamp_ns = int(parts[1])
    except ValueError:
        raise BadTelemetryLine(f"timestamp {parts[1]!r} is not an integer of nanoseconds") from None
    values: dict[str, float] = {}
    for pair in parts[2:]:
        name, sep, text = pair.partition("=")
        if not sep or not _NAME.fullmatch(name):
            raise BadTelemetryLine(f"{pair!r} is not name=value")
        try:
            value = float(text)
        except ValueError:
            raise BadTelemetryLine(f"{pair!r}: {text!r} is not a number") from None
        if not math.isfinite(value):
            raise BadTelemetryLine(f"{pair!r}: value must be finite")
        values[name] = value
    return timestamp_ns, values


class CappedLog:
    """Reads a pipe to EOF into a file that keeps the first `cap` bytes (then a truncation note),
    remembers the last TAIL_BYTES, and hands complete TETRYX lines to `on_line`."""

    def __init__(self, path: Path, cap: int, on_line: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.cap = cap
        self.on_line = on_line
        self.written = 0
        self.discarded = 0
        self.tail = b""
        self._partial = b""

    async def pump(self, read_fd: int) -> None:
        """Consume the pipe until every writer has closed it; closes `read_fd`."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        try:
            with self.path.open("wb") as out:
                while chunk := await reader.read(1 << 16):
                    self._keep(out, chunk)
                    if self.on_line is not None:
                        self._lines(chunk)
                if self.on_line is not None and self._partial:
                    self._lines(b"\n")
                if self.discarded:
                    out.write(f"\n[lynx: log capped at {self.cap} bytes; {self.discarded} more bytes discarded]\n"
                              .encode())
        finally:
            transport.close()

    def _keep(self, out, chunk: bytes) -> None:
        room = max(0, self.cap - self.written)
        if room:
            out.write(chunk[:room])
            self.written += min(room, len(chunk))
        self.discarded += max(0, len(chunk) - room)
        self.tail = (self.tail + chunk)[-TAIL_BYTES:]

    def _lines(self, chunk: bytes) -> None:
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        if len(self._partial) > MAX_LINE:
            self._partial = b""
        for line in lines:
            if line.startswith(LINE_PREFIX) and len(line) <= MAX_LINE:
                self.on_line(line.decode("utf-8", "replace").strip())

    def tail_text(self, chars: int) -> str:
        """The last `chars` characters the process wrote, whatever the cap kept."""
        return self.tail.decode("utf-8", "replace")[-chars:].strip()


@dataclass(frozen=True)
class Collected:
    """The job's output files, as absolute paths and as OutputFile messages (at most the cap given to
    collect_files, in path order); `total` counts every file found."""

    paths: list[str]
    files: list[sched_pb.OutputFile]
    total: int = 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def collect_files(output_dir: Path, cap: int | None = None) -> Collected:
    """Regular files under output_dir, subfolders included, sorted; symlinks (files or folders) are
    neither followed nor collected, and an output_dir that was replaced by a link yields nothing.
    Only the first `cap` files (in path order) are hashed and listed; `total` counts them all, so a
    job writing 50,000 files still gets a result report far below the gRPC message limit.
    Blocking (it reads every listed file): call it through asyncio.to_thread."""
    if output_dir.is_symlink() or not output_dir.is_dir():
        return Collected([], [])
    root = output_dir.resolve()
    regular: list[Path] = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for name in names:
            path = Path(folder) / name
            if not path.is_symlink() and path.is_file():
                regular.append(path)
    regular.sort(key=str)
    found: list[sched_pb.OutputFile] = []
    for path in regular[:cap]:
        try:
            size, digest = path.stat().st_size, _sha256(path)
        except OSError:
            continue
        found.append(sched_pb.OutputFile(path=str(path), relative_path=path.relative_to(root).as_posix(),
                                         size_bytes=size, sha256=digest))
    return Collected([f.path for f in found], found, len(regular))


def _children(pid: str) -> list[str]:
    """Child pids of every thread of `pid` (/proc/<pid>/task/<tid>/children); [] when unreadable."""
    out: list[str] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(x.decode() for x in f.read().split())
        except OSError:
            continue
    return out


def group_rss_bytes(pgid: int, full_scan: bool = True) -> int:
    """Resident memory of every process in the group `pgid` (from /proc; 0 where /proc is absent).

    `full_scan` reads every process of the host, which finds group members that left the leader's
    tree (re-parented to init when their parent exited). Without it only the leader's descendants
    are read: a few files instead of every process on the machine, for the frequent polls; a
    descendant that moved to another group is skipped either way."""
    page = os.sysconf("SC_PAGE_SIZE")
    if full_scan:
        try:
            candidates = [e for e in os.listdir("/proc") if e.isdigit()]
        except OSError:
            return 0
        expand = False
    else:
        candidates, expand = [str(pgid)], True
    total = 0
    seen: set[str] = set()
    while candidates:
        pid = candidates.pop()
        if pid in seen:
            continue
        seen.add(pid)
        fields = stat_fields(pid)
        if fields is None or len(fields) <= 21 or int(fields[2]) != pgid:
            continue
        total += int(fields[21]) * page
        if expand:
            candidates.extend(_children(pid))
    return total


REPORT_MARGIN = 64 * 1024  # room under the gRPC message limit for the envelope
TEXT_CAP = 64 * 1024  # characters kept of an error message or a metadata value in an oversized report


def bound_result(result: sched_pb.JobResult, max_bytes: int) -> sched_pb.JobResult:
    """A result that fits in one gRPC message of `max_bytes`: an oversized one keeps fewer listed files
    and shorter texts, with a note saying so. A report that cannot be sent would be resent forever."""
    budget = max_bytes - REPORT_MARGIN
    if result.ByteSize() <= budget:
        return result
    if len(result.error_message) > TEXT_CAP:
        result.error_message = result.error_message[:TEXT_CAP] + " [truncated]"
    for key, text in list(result.metadata.items()):
        if len(text) > TEXT_CAP:
            result.metadata[key] = text[:TEXT_CAP] + " [truncated]"
    listed = len(result.files)
    while result.ByteSize() > budget and (result.files or result.output_files):
        keep = len(result.files) // 2
        del result.files[keep:]
        del result.output_files[keep:]
    if len(result.files) < listed:
        result.notes.append(f"the report listed only {len(result.files)} of its {listed} output files, "
                            "to stay under the gRPC message limit (LYNX_LIMIT_GRPC_MESSAGE_BYTES)")
    while result.ByteSize() > budget and (result.notes or result.outputs):
        del result.outputs[len(result.outputs) // 2:]
        del result.notes[len(result.notes) // 2:]
    return result
