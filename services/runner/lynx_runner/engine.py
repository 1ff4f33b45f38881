"""Engines: one job = output dir, telemetry endpoint, scenario process, watchdog, result."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lynx.scheduler.v1 import scheduler_service_pb2 as sched_pb
from lynx.telemetry.v1 import telemetry_service_pb2 as tel_pb
from lynx.telemetry.v1 import telemetry_service_pb2_grpc as tel_grpc
from lynx_common import limits
from lynx_common.errors import ValidationError
from lynx_common.server import GrpcServer
from lynx_runner.config import RunnerConfig, parse_memory
from lynx_runner.endpoint import JobTelemetryServicer, job_secret, telemetry_url
from lynx_runner.endpoint_socket import start_unix_endpoint
from lynx_runner.launch import JobProcess, LaunchError, LaunchSpec, kill_group, spawn_cold
from lynx_runner.orphans import JobRecords, records_dir
from lynx_runner.relay import FINAL_FLUSH_DEADLINE_S, TelemetryRelay
from lynx_runner.streams import (
    BadTelemetryLine,
    CappedLog,
    Collected,
    collect_files,
    group_rss_bytes,
    parse_telemetry_line,
)
from lynx_runner.watchdog import Breach, Watchdog

log = logging.getLogger(__name__)
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
STDERR_TAIL_CHARS = 2000
LOG_TAIL_CHARS = 4000  # JobResult.stdout_tail / stderr_tail
MEMORY_POLL_S = 0.25
FULL_SCAN_S = 2.0  # how often the memory poll also reads group members outside the leader's process tree
DRAIN_TIMEOUT_S = 2.0
_OOM_PATTERNS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "out of memory")


@dataclass
class JobHandle:
    """A running job as the agent sees it: cancel it with `cancel()`. `slot`: the runner's slot it
    must hold while its process runs (None: run at once)."""

    lease: sched_pb.JobLease
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_reason: str = ""
    slot: Slot | None = None

    def cancel(self, reason: str) -> None:
        self.cancel_reason = reason
        self.cancelled.set()


class Slot:
    """A job's claim on one of the runner's max_concurrent_jobs slots. The engine prepares the job
    (directories, run config, telemetry endpoint) first, takes the slot right before it starts the
    process, and gives it back the moment the process has exited: a job leased ahead starts then,
    while the finished job's telemetry is flushed and its outputs collected, uploaded and reported."""

    def __init__(self, slots: asyncio.Semaphore, on_start=None) -> None:
        self._slots = slots
        self._on_start = on_start
        self.started_at = 0.0  # monotonic: when it got the slot
        self.ended_at = 0.0  # when it gave it back

    async def acquire(self, cancelled: asyncio.Event) -> bool:
        """Wait for a free slot; False (holding none) if the job is cancelled first."""
        if cancelled.is_set():
            return False
        if self._slots.locked():
            acquire = asyncio.ensure_future(self._slots.acquire())
            cancel = asyncio.ensure_future(cancelled.wait())
            try:
                await asyncio.wait({acquire, cancel}, return_when=asyncio.FIRST_COMPLETED)
            except BaseException:  # the runner is closing: give back a slot acquired meanwhile
                if acquire.done() and not acquire.cancelled():
                    self._slots.release()
                raise
            finally:
                cancel.cancel()
                if not acquire.done():
                    acquire.cancel()
            if not acquire.done() or acquire.cancelled():
                return False
            if cancelled.is_set():
                self._slots.release()
                return False
        else:
            await self._slots.acquire()
        self.started_at = time.monotonic()
        if self._on_start is not None:
            self._on_start()
        return True

    def release(self) -> None:
        """Give the slot back (once; a no-op when not held)."""
        if self.started_at and not self.ended_at:
            self.ended_at = time.monotonic()
            self._slots.release()


class Engine(Protocol):
    """What the agent needs from an engine: run one attempt to its end."""

    name: str

    async def start(self) -> None:
        """Prepare (for example a warm fork server) before the first lease."""

    async def close(self) -> None:
        """Release what start() acquired; running jobs are already gone."""

    async def run(self, handle: JobHandle) -> sched_pb.JobResult:
        """Run one attempt and describe how it ended; never raises for a scenario's fault."""


class MemoryPoll:
    """Reads a job's process group's resident memory at most every MEMORY_POLL_S: the leader's
    process tree each time (a few /proc files), every process on the host every FULL_SCAN_S (to
    find group members re-parented out of the tree)."""

    def __init__(self, pgid: int, limit: int) -> None:
        self.pgid = pgid
        self.limit = limit
        now = time.monotonic()
        self.next_poll = now + MEMORY_POLL_S
        self.next_full = now + FULL_SCAN_S

    def over_limit(self) -> int | None:
        """The group's resident bytes when a poll is due and finds them over the limit; else None."""
        now = time.monotonic()
        if now < self.next_poll - 0.02:  # a tick may wake a hair early
            return None
        self.next_poll = now + MEMORY_POLL_S
        full = now >= self.next_full
        if full:
            self.next_full = now + FULL_SCAN_S
        rss = group_rss_bytes(self.pgid, full_scan=full)
        return rss if rss > self.limit else None


def lease_memory_limit(lease: sched_pb.JobLease, default: int) -> int:
    """Bytes the job may use: the runner's job_memory_limit (0 = none), lowered by the lease's
    compute.container.memory_request when that is smaller. A batch never raises the operator's limit."""
    request = lease.compute.container.memory_request
    if not request:
        return default
    asked = parse_memory(request, "compute.container.memory_request")
    return min(asked, default) if default else asked


@dataclass
class JobPaths:
    """Where one job's files live: its output dir and the runner's private dir for it."""

    output_dir: Path
    private_dir: Path

    @property
    def run_config(self) -> Path:
        return self.private_dir / "run_config.json"


def prepare_dirs(output_root: Path, job_id: str) -> JobPaths:
    """Fresh output and private dirs for `job_id`, both checked to lie inside output_root."""
    if not _SAFE_ID.fullmatch(job_id):
        raise ValueError(f"job id {job_id!r} is not a safe directory name")
    root = output_root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    paths = JobPaths(root / job_id, root / ".lynx" / job_id)
    for path in (paths.output_dir, paths.private_dir):
        if path.is_symlink():
            path.unlink()
        shutil.rmtree(path, ignore_errors=True)  # a retry starts from an empty directory
        path.mkdir(parents=True)
        if path.resolve().parent not in (root, root / ".lynx"):
            raise ValueError(f"{path} resolves outside output_root {root}")
    return paths


class StdoutTelemetry:
    """The line protocol on a scenario's stdout, fed into the same watchdog and relay as gRPC."""

    def __init__(self, watchdog: Watchdog, relay: TelemetryRelay) -> None:
        self.watchdog = watchdog
        self.relay = relay
        self.received = 0
        self.malformed = 0
        self.last_error = ""

    def on_line(self, line: str) -> None:
        """One ``TETRYX ...`` line: observe it, or count it as dropped."""
        try:
            timestamp_ns, values = parse_telemetry_line(line)
        except BadTelemetryLine as exc:
            self.malformed += 1
            self.last_error = str(exc)
            return
        self.received += 1
        self.watchdog.observe(timestamp_ns, values)
        self.relay.add(tel_pb.TelemetrySample(timestamp_ns=timestamp_ns, values=values))


@dataclass
class Outcome:
    """How supervision ended: reason (a TerminationReason), message and (on early termination) the breach."""

    reason: sched_pb.TerminationReason.ValueType
    message: str = ""
    breach: Breach | None = None


class ScenarioEngine:
    """The shared job lifecycle; subclasses say what process to start.

    Two engines ship with the runner (lynx_runner.engines):

    * `basilisk`: a Python entrypoint run with `python_executable`, cold (a fresh interpreter per job)
      or warm (forked by a fork server that has already imported the `preload` modules).
    * `command`: any executable with an argument template, so a scenario in bash, C or Julia runs
      under the same TETRYX_* contract and sends telemetry as ``TETRYX <timestamp_ns> name=value`` lines.

    Both share `run`: private dir, run config, endpoint + relay + watchdog, capped logs, process
    group kills, memory limit, output collection and the JobResult.
    """

    name = ""

    def __init__(self, config: RunnerConfig, runner_id: str, telemetry_stub: tel_grpc.TelemetryServiceStub):
        self.config = config
        self.runner_id = runner_id
        self.telemetry_stub = telemetry_stub
        self.records = JobRecords(records_dir(config.output_root, runner_id))  # what a guardian kills

    async def start(self) -> None:
        """Nothing to prepare for a process per job."""

    async def close(self) -> None:
        """Nothing to release."""

    def describe(self) -> dict[str, str]:
        """Engine-specific result metadata."""
        return {}

    def launch_spec(self, paths: JobPaths, lease: sched_pb.JobLease, env: dict[str, str]) -> LaunchSpec:
        """What to start for this job; raises for a launch error."""
        raise NotImplementedError

    async def spawn(self, spec: LaunchSpec) -> JobProcess:
        """Start the job's process (cold by default)."""
        return await spawn_cold(spec)

    def _result(self, lease: sched_pb.JobLease, started: float, **fields) -> sched_pb.JobResult:
        try:
            simulation_name = str(json.loads(lease.run_config_json)["metadata"]["simulation_name"])
        except (ValueError, KeyError, TypeError):
            simulation_name = ""
        metadata = {"engine": self.name, "simulation_name": simulation_name, "runner_id": self.runner_id,
                    **self.describe()}
        return sched_pb.JobResult(job_id=lease.job_id, attempt=lease.attempt,
                                  execution_time_secs=round(time.monotonic() - started, 3), metadata=metadata,
                                  **fields)

    def _launch_error(self, lease: sched_pb.JobLease, started: float, message: str) -> sched_pb.JobResult:
        return self._result(lease, started, success=False, termination_reason=sched_pb.TERMINATION_REASON_LAUNCH_ERROR,
                            error_message=message, exit_code=-1)

    async def run(self, handle: JobHandle) -> sched_pb.JobResult:
        """Run one attempt to its end and describe how it ended."""
        lease = handle.lease
        started = time.monotonic()
        if not _SAFE_ID.fullmatch(lease.job_id):
            return self._launch_error(lease, started, f"job id {lease.job_id!r} is not a safe directory name")
        try:
            document = json.loads(lease.run_config_json)
            if not isinstance(document, dict):
                raise ValueError("the lease's run config is not a JSON object")
            paths = prepare_dirs(self.config.output_root, lease.job_id)
            paths.run_config.write_text(json.dumps(document, indent=2))
            memory_limit = lease_memory_limit(lease, self.config.job_memory_limit)
        except Exception as exc:  # noqa: BLE001 - reported as the job's failure
            return self._launch_error(lease, started, f"cannot launch: {exc}")

        watchdog = Watchdog(lease.early_termination)
        relay = TelemetryRelay(self.telemetry_stub, lease.job_id, lease.batch_id, lease.telemetry)
        secret = job_secret()
        servicer = JobTelemetryServicer(watchdog, relay, secret)
        endpoint = GrpcServer(
            lambda s: tel_grpc.add_TelemetryServiceServicer_to_server(servicer, s),
            [tel_pb.DESCRIPTOR.services_by_name["TelemetryService"].full_name],
        )
        await endpoint.start()
        unix = await start_unix_endpoint(servicer, paths.private_dir)  # the client's grpc-free path
        flusher = asyncio.create_task(relay.run_periodic())
        lines = StdoutTelemetry(watchdog, relay)
        env = {**os.environ, "TETRYX_RUN_CONFIG": str(paths.run_config),
               "TETRYX_TELEMETRY_URL": telemetry_url(endpoint.address, secret, unix and str(unix.path)),
               "TETRYX_OUTPUT_DIR": str(paths.output_dir)}
        stdout = CappedLog(paths.private_dir / "stdout.log", self.config.log_cap_bytes, lines.on_line)
        stderr = CappedLog(paths.private_dir / "stderr.log", self.config.log_cap_bytes)
        proc = None
        try:
            proc, outcome = await self._launch_and_supervise(handle, paths, env, memory_limit, watchdog,
                                                             stdout, stderr)
        finally:
            if handle.slot is not None:  # the process has exited: the next job may start now
                handle.slot.release()
                started = handle.slot.started_at or started
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            await asyncio.gather(endpoint.stop(grace=0.5), *([unix.stop(grace=0.5)] if unix else []))
            await relay.flush(FINAL_FLUSH_DEADLINE_S)
        # Off the event loop: hashing a huge output must not stop heartbeats.
        collected = await asyncio.to_thread(collect_files, paths.output_dir, limits.value("output_files"))
        result = self._finish(lease, started, paths, proc, outcome, memory_limit, stderr, relay, servicer, lines,
                              collected)
        result.stdout_tail = stdout.tail_text(LOG_TAIL_CHARS)  # for the dashboard and the CI reports
        result.stderr_tail = stderr.tail_text(LOG_TAIL_CHARS)
        return result

    async def _launch_and_supervise(
        self, handle: JobHandle, paths: JobPaths, env: dict[str, str], memory_limit: int, watchdog: Watchdog,
        stdout: CappedLog, stderr: CappedLog,
    ) -> tuple[JobProcess | None, Outcome]:
        """Start the process with its output pipes, supervise it, drain the pipes; (process, Outcome)."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        pumps = [asyncio.create_task(stdout.pump(out_r)), asyncio.create_task(stderr.pump(err_r))]
        proc = None
        try:
            spec = self.launch_spec(paths, handle.lease, env)
            spec.stdout_fd, spec.stderr_fd, spec.memory_limit = out_w, err_w, memory_limit
            if handle.slot is not None and not await handle.slot.acquire(handle.cancelled):
                return None, Outcome(sched_pb.TERMINATION_REASON_CANCELLED,
                                     f"cancelled before it started: {handle.cancel_reason}")
            proc = await self.spawn(spec)
        except (LaunchError, ValidationError, OSError, ValueError) as exc:
            return None, Outcome(sched_pb.TERMINATION_REASON_LAUNCH_ERROR, f"cannot launch: {exc}")
        finally:
            os.close(out_w)
            os.close(err_w)
            if proc is None:
                await asyncio.gather(*pumps, return_exceptions=True)
        log.info("job %s attempt %d: pid %d (%s)", handle.lease.job_id, handle.lease.attempt, proc.pid,
                 "warm" if proc.warm else "cold")
        self.records.record(handle.lease.job_id, proc.pid)
        try:
            outcome = await self._supervise(proc, handle, watchdog, handle.lease.timeout_seconds, memory_limit)
        finally:
            self.records.forget(handle.lease.job_id)
            _, pending = await asyncio.wait(pumps, timeout=DRAIN_TIMEOUT_S)
            for task in pending:  # a process that escaped the group still holds the pipe
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        return proc, outcome

    async def _supervise(self, proc: JobProcess, handle: JobHandle, watchdog: Watchdog, timeout: float,
                         memory_limit: int) -> Outcome:
        """Wait for the process, killing its group on breach, timeout, cancel or memory; the Outcome."""
        deadline = time.monotonic() + timeout if timeout > 0 else None
        memory = MemoryPoll(proc.pid, memory_limit) if memory_limit else None
        waiter = asyncio.create_task(proc.wait())
        canceller = asyncio.create_task(handle.cancelled.wait())
        try:
            while True:
                tick = watchdog.period if watchdog.active else 1.0
                if memory_limit:
                    tick = min(tick, MEMORY_POLL_S)
                if deadline is not None:
                    tick = max(0.0, min(tick, deadline - time.monotonic()))
                await asyncio.wait({waiter, canceller}, timeout=tick, return_when=asyncio.FIRST_COMPLETED)
                outcome = self._verdict(handle, watchdog, waiter, deadline, timeout, memory)
                if outcome is None:
                    continue
                if outcome.reason == sched_pb.TERMINATION_REASON_EXITED:
                    kill_group(proc.pid)  # reap grandchildren the scenario left behind
                    return outcome
                if not waiter.done():
                    kill_group(proc.pid)
                    log.info("job %s: killed (%s)", handle.lease.job_id, outcome.message)
                await waiter
                return outcome
        finally:
            canceller.cancel()
            if not waiter.done():  # the agent is shutting down: leave nothing running
                kill_group(proc.pid)
                await asyncio.shield(waiter)

    @staticmethod
    def _verdict(handle: JobHandle, watchdog: Watchdog, waiter: asyncio.Task, deadline: float | None,
                 timeout: float, memory: MemoryPoll | None) -> Outcome | None:
        """Why supervision should end now, or None to keep waiting."""
        breach = watchdog.check()
        if breach is not None:
            return Outcome(sched_pb.TERMINATION_REASON_EARLY_TERMINATION, breach.message(), breach)
        if handle.cancelled.is_set():
            return Outcome(sched_pb.TERMINATION_REASON_CANCELLED, f"cancelled: {handle.cancel_reason}")
        if waiter.done():
            return Outcome(sched_pb.TERMINATION_REASON_EXITED)
        rss = memory.over_limit() if memory is not None else None
        if rss is not None:
            return Outcome(sched_pb.TERMINATION_REASON_OUT_OF_MEMORY,
                           f"out of memory: the job used {rss / 2**20:.0f} MiB resident, over "
                           f"its limit of {memory.limit / 2**20:.0f} MiB; killed")
        if deadline is not None and time.monotonic() >= deadline:
            return Outcome(sched_pb.TERMINATION_REASON_TIMEOUT, f"timed out after {timeout:g} s (job_timeout_seconds)")
        return None

    def _finish(self, lease: sched_pb.JobLease, started: float, paths: JobPaths, proc: JobProcess | None,
                outcome: Outcome, memory_limit: int, stderr: CappedLog, relay: TelemetryRelay,
                servicer: JobTelemetryServicer, lines: StdoutTelemetry, collected: Collected) -> sched_pb.JobResult:
        """The JobResult for a supervised (or failed-to-launch) attempt."""
        exit_code = proc.returncode if proc is not None and proc.returncode is not None else -1
        reason, message = outcome.reason, outcome.message
        tail = stderr.tail_text(STDERR_TAIL_CHARS)
        if proc is not None and proc.lost:
            reason = sched_pb.TERMINATION_REASON_RUNNER_LOST
            message = "the runner's fork server died while the job ran; the job was killed"
        elif reason == sched_pb.TERMINATION_REASON_EXITED and exit_code != 0:
            if memory_limit and any(p in tail for p in _OOM_PATTERNS):
                reason = sched_pb.TERMINATION_REASON_OUT_OF_MEMORY
                message = (f"out of memory: the job hit its limit of {memory_limit / 2**20:.0f} MiB "
                           f"(exit code {exit_code})")
            else:
                message = f"scenario exited with code {exit_code}"
            message += f"; stderr tail:\n{tail}" if tail else ""
        success = reason == sched_pb.TERMINATION_REASON_EXITED and exit_code == 0
        result = self._result(lease, started, success=success, exit_code=exit_code, termination_reason=reason,
                              output_files=collected.paths, files=collected.files,
                              telemetry_samples_sent=servicer.received + lines.received,
                              telemetry_samples_dropped=servicer.lost + lines.malformed + relay.lost)
        result.metadata["telemetry_samples"] = str(relay.received)
        result.metadata.update(relay.stage_counts(client_dropped=servicer.lost + lines.malformed))
        result.metadata["start"] = "warm" if proc is not None and proc.warm else "cold"
        if memory_limit:
            result.metadata["memory_limit_bytes"] = str(memory_limit)
        if collected.total > len(collected.files):
            result.notes.append(f"{collected.total} output files; only the first {len(collected.files)} are listed "
                                "(LYNX_LIMIT_OUTPUT_FILES)")
        if lines.malformed:
            result.metadata["telemetry_lines_malformed"] = f"{lines.malformed} ({lines.last_error})"
        if outcome.breach is not None:
            condition = outcome.breach.condition
            result.termination_variable = condition.variable
            result.termination_condition = condition.comparison
            result.termination_value = outcome.breach.value
        if not success:
            result.error_message = message
        return result
