"""The plain rows the scheduler's store reads and writes (no SQL, no protos)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class BatchRow:
    batch_id: str
    name: str
    config: bytes
    seed: int
    total_jobs: int
    engine: str
    sim_type: str
    max_parallel: int
    max_retries: int
    cancelled: bool
    created_at: float
    started_at: float | None
    finished_at: float | None
    aborted: bool = False
    status_message: str = ""
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # jobs by status word
    failures_by_reason: dict[str, int] = field(default_factory=dict)  # failed jobs by reason word


@dataclass
class AttemptRow:
    job_id: str
    attempt: int
    runner_id: str
    started_at: float
    ended_at: float | None
    outcome: str  # AttemptOutcome's REST name
    exit_code: int
    reason: str  # TerminationReason's REST name ("" when none)
    error_message: str | None
    reported: bool
    ignored_reports: int


@dataclass
class JobRow:
    job_id: str
    batch_id: str
    run_id: int
    seed: int | None
    sample_id: int | None  # its parameters are entry run_id - first_run_id of that sample chunk
    legacy_parameters: dict | None  # JSON parameters of rows written before schema version 2
    status: str
    attempts: int
    failures: int
    runner_id: str | None
    result: bytes | None
    started_at: float | None
    finished_at: float | None
    runner_losses: int = 0
    not_before: float = 0.0
    reason: str = ""
    history: list[AttemptRow] = field(default_factory=list)


@dataclass
class RunnerRow:
    runner_id: str
    name: str
    engines: list[str]
    capabilities: bytes
    online: bool
    last_heartbeat: float | None
    running_jobs: int = 0
    heartbeat_interval: float = 2.0


@dataclass(frozen=True)
class AttemptEnd:
    """An attempts-row update: how one attempt ended."""

    job_id: str
    attempt: int
    ended_at: float
    outcome: str
    exit_code: int
    reason: str
    error_message: str | None
    reported: bool


@dataclass(frozen=True)
class JobMove:
    """A jobs-row update after its attempt ended; `result` None keeps the stored one (and its reason)."""

    job_id: str
    status: str
    result: bytes | None
    reason: str
    charge: bool
    lost: bool
    not_before: float
    finished_at: float | None  # set when the job became terminal


@dataclass(frozen=True)
class Report:
    """One attempt's end as the scheduler records it (words as the store keeps them)."""

    outcome: str  # completed, failed, cancelled, released, runner_lost
    exit_code: int = 0
    reason: str = ""  # the runner's termination reason, for a finished attempt
    error_message: str | None = None
    result: bytes | None = None  # the runner's JobResult, for a finished attempt
    reported: bool = True  # ended by the runner's report (False: by the scheduler)


JOB_COLUMNS = (
    "job_id, batch_id, run_id, seed, sample_id, parameters, status, attempts, failures, runner_id, result,"
    " started_at, finished_at, runner_losses, not_before, reason"
)
BATCH_COLUMNS = (
    "batch_id, name, config, seed, total_jobs, engine, sim_type, max_parallel, max_retries, cancelled,"
    " created_at, started_at, finished_at, aborted, status_message, warnings"
)
ATTEMPT_COLUMNS = (
    "job_id, attempt, runner_id, started_at, ended_at, outcome, exit_code, reason, error_message,"
    " reported, ignored_reports"
)


def job_of(row) -> JobRow:
    legacy = json.loads(row[5]) if row[5] else None
    return JobRow(*row[:5], legacy, *row[6:])


def batch_of(row) -> BatchRow:
    warnings = json.loads(row[15]) if row[15] else []
    return BatchRow(*row[:9], bool(row[9]), *row[10:13], bool(row[13]), row[14] or "", warnings)


def attempt_of(row) -> AttemptRow:
    return AttemptRow(*row[:9], bool(row[9]), row[10])
