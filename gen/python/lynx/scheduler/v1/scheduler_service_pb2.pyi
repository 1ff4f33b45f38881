import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from lynx.common.v1 import batch_config_pb2 as _batch_config_pb2
from lynx.common.v1 import parameters_pb2 as _parameters_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BatchStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_STATUS_UNSPECIFIED: _ClassVar[BatchStatus]
    BATCH_STATUS_PENDING: _ClassVar[BatchStatus]
    BATCH_STATUS_RUNNING: _ClassVar[BatchStatus]
    BATCH_STATUS_COMPLETED: _ClassVar[BatchStatus]
    BATCH_STATUS_FAILED: _ClassVar[BatchStatus]
    BATCH_STATUS_CANCELLED: _ClassVar[BatchStatus]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_PENDING: _ClassVar[JobStatus]
    JOB_STATUS_RUNNING: _ClassVar[JobStatus]
    JOB_STATUS_COMPLETED: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
    JOB_STATUS_CANCELLED: _ClassVar[JobStatus]

class TerminationReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TERMINATION_REASON_UNSPECIFIED: _ClassVar[TerminationReason]
    TERMINATION_REASON_EXITED: _ClassVar[TerminationReason]
    TERMINATION_REASON_EARLY_TERMINATION: _ClassVar[TerminationReason]
    TERMINATION_REASON_TIMEOUT: _ClassVar[TerminationReason]
    TERMINATION_REASON_CANCELLED: _ClassVar[TerminationReason]
    TERMINATION_REASON_LAUNCH_ERROR: _ClassVar[TerminationReason]
    TERMINATION_REASON_RUNNER_LOST: _ClassVar[TerminationReason]
    TERMINATION_REASON_OUT_OF_MEMORY: _ClassVar[TerminationReason]
    TERMINATION_REASON_RELEASED: _ClassVar[TerminationReason]

class AttemptOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTEMPT_OUTCOME_UNSPECIFIED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_RUNNING: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_COMPLETED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_FAILED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_RUNNER_LOST: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_RELEASED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_CANCELLED: _ClassVar[AttemptOutcome]

class RunnerStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUNNER_STATUS_UNSPECIFIED: _ClassVar[RunnerStatus]
    RUNNER_STATUS_ONLINE: _ClassVar[RunnerStatus]
    RUNNER_STATUS_OFFLINE: _ClassVar[RunnerStatus]
BATCH_STATUS_UNSPECIFIED: BatchStatus
BATCH_STATUS_PENDING: BatchStatus
BATCH_STATUS_RUNNING: BatchStatus
BATCH_STATUS_COMPLETED: BatchStatus
BATCH_STATUS_FAILED: BatchStatus
BATCH_STATUS_CANCELLED: BatchStatus
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_PENDING: JobStatus
JOB_STATUS_RUNNING: JobStatus
JOB_STATUS_COMPLETED: JobStatus
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_CANCELLED: JobStatus
TERMINATION_REASON_UNSPECIFIED: TerminationReason
TERMINATION_REASON_EXITED: TerminationReason
TERMINATION_REASON_EARLY_TERMINATION: TerminationReason
TERMINATION_REASON_TIMEOUT: TerminationReason
TERMINATION_REASON_CANCELLED: TerminationReason
TERMINATION_REASON_LAUNCH_ERROR: TerminationReason
TERMINATION_REASON_RUNNER_LOST: TerminationReason
TERMINATION_REASON_OUT_OF_MEMORY: TerminationReason
TERMINATION_REASON_RELEASED: TerminationReason
ATTEMPT_OUTCOME_UNSPECIFIED: AttemptOutcome
ATTEMPT_OUTCOME_RUNNING: AttemptOutcome
ATTEMPT_OUTCOME_COMPLETED: AttemptOutcome
ATTEMPT_OUTCOME_FAILED: AttemptOutcome
ATTEMPT_OUTCOME_RUNNER_LOST: AttemptOutcome
ATTEMPT_OUTCOME_RELEASED: AttemptOutcome
ATTEMPT_OUTCOME_CANCELLED: AttemptOutcome
RUNNER_STATUS_UNSPECIFIED: RunnerStatus
RUNNER_STATUS_ONLINE: RunnerStatus
RUNNER_STATUS_OFFLINE: RunnerStatus

class JobStatusCount(_message.Message):
    __slots__ = ("status", "count")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    status: JobStatus
    count: int
    def __init__(self, status: _Optional[_Union[JobStatus, str]] = ..., count: _Optional[int] = ...) -> None: ...

class TerminationReasonCount(_message.Message):
    __slots__ = ("reason", "count")
    REASON_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    reason: TerminationReason
    count: int
    def __init__(self, reason: _Optional[_Union[TerminationReason, str]] = ..., count: _Optional[int] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("batch_id", "name", "status", "total_jobs", "jobs_by_status", "throughput_jobs_per_minute", "estimated_completion_time_mins", "seed", "config", "created_at", "started_at", "finished_at", "status_message", "early_terminated_jobs", "failures_by_reason", "warnings")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_JOBS_FIELD_NUMBER: _ClassVar[int]
    JOBS_BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    THROUGHPUT_JOBS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COMPLETION_TIME_MINS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EARLY_TERMINATED_JOBS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    name: str
    status: BatchStatus
    total_jobs: int
    jobs_by_status: _containers.RepeatedCompositeFieldContainer[JobStatusCount]
    throughput_jobs_per_minute: float
    estimated_completion_time_mins: float
    seed: int
    config: _batch_config_pb2.BatchConfig
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    status_message: str
    early_terminated_jobs: int
    failures_by_reason: _containers.RepeatedCompositeFieldContainer[TerminationReasonCount]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, batch_id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[_Union[BatchStatus, str]] = ..., total_jobs: _Optional[int] = ..., jobs_by_status: _Optional[_Iterable[_Union[JobStatusCount, _Mapping]]] = ..., throughput_jobs_per_minute: _Optional[float] = ..., estimated_completion_time_mins: _Optional[float] = ..., seed: _Optional[int] = ..., config: _Optional[_Union[_batch_config_pb2.BatchConfig, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status_message: _Optional[str] = ..., early_terminated_jobs: _Optional[int] = ..., failures_by_reason: _Optional[_Iterable[_Union[TerminationReasonCount, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("job_id", "success", "execution_time_secs", "output_files", "metadata", "error_message", "exit_code", "termination_reason", "attempt", "telemetry_samples_sent", "telemetry_samples_dropped", "files", "termination_variable", "termination_condition", "termination_value", "outputs", "artifacts", "notes", "stdout_tail", "stderr_tail")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_SECS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FILES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_SAMPLES_SENT_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_SAMPLES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_VARIABLE_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_CONDITION_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_VALUE_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    STDOUT_TAIL_FIELD_NUMBER: _ClassVar[int]
    STDERR_TAIL_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    success: bool
    execution_time_secs: float
    output_files: _containers.RepeatedScalarFieldContainer[str]
    metadata: _containers.ScalarMap[str, str]
    error_message: str
    exit_code: int
    termination_reason: TerminationReason
    attempt: int
    telemetry_samples_sent: int
    telemetry_samples_dropped: int
    files: _containers.RepeatedCompositeFieldContainer[OutputFile]
    termination_variable: str
    termination_condition: str
    termination_value: float
    outputs: _containers.RepeatedCompositeFieldContainer[_parameters_pb2.Parameter]
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    notes: _containers.RepeatedScalarFieldContainer[str]
    stdout_tail: str
    stderr_tail: str
    def __init__(self, job_id: _Optional[str] = ..., success: _Optional[bool] = ..., execution_time_secs: _Optional[float] = ..., output_files: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., error_message: _Optional[str] = ..., exit_code: _Optional[int] = ..., termination_reason: _Optional[_Union[TerminationReason, str]] = ..., attempt: _Optional[int] = ..., telemetry_samples_sent: _Optional[int] = ..., telemetry_samples_dropped: _Optional[int] = ..., files: _Optional[_Iterable[_Union[OutputFile, _Mapping]]] = ..., termination_variable: _Optional[str] = ..., termination_condition: _Optional[str] = ..., termination_value: _Optional[float] = ..., outputs: _Optional[_Iterable[_Union[_parameters_pb2.Parameter, _Mapping]]] = ..., artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ..., notes: _Optional[_Iterable[str]] = ..., stdout_tail: _Optional[str] = ..., stderr_tail: _Optional[str] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("name", "size_bytes", "sha256", "uri")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    name: str
    size_bytes: int
    sha256: str
    uri: str
    def __init__(self, name: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., uri: _Optional[str] = ...) -> None: ...

class OutputFile(_message.Message):
    __slots__ = ("path", "relative_path", "size_bytes", "sha256")
    PATH_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_PATH_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    path: str
    relative_path: str
    size_bytes: int
    sha256: str
    def __init__(self, path: _Optional[str] = ..., relative_path: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class Attempt(_message.Message):
    __slots__ = ("attempt", "runner_id", "started_at", "ended_at", "outcome", "exit_code", "termination_reason", "error_message", "ignored_reports")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RUNNER_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    IGNORED_REPORTS_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    runner_id: str
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    outcome: AttemptOutcome
    exit_code: int
    termination_reason: TerminationReason
    error_message: str
    ignored_reports: int
    def __init__(self, attempt: _Optional[int] = ..., runner_id: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome: _Optional[_Union[AttemptOutcome, str]] = ..., exit_code: _Optional[int] = ..., termination_reason: _Optional[_Union[TerminationReason, str]] = ..., error_message: _Optional[str] = ..., ignored_reports: _Optional[int] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "batch_id", "run_id", "status", "parameters", "attempts", "runner_id", "result", "attempt_history", "not_before", "runner_losses", "seed")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RUNNER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_HISTORY_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    RUNNER_LOSSES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    batch_id: str
    run_id: int
    status: JobStatus
    parameters: _containers.RepeatedCompositeFieldContainer[_parameters_pb2.Parameter]
    attempts: int
    runner_id: str
    result: JobResult
    attempt_history: _containers.RepeatedCompositeFieldContainer[Attempt]
    not_before: _timestamp_pb2.Timestamp
    runner_losses: int
    seed: int
    def __init__(self, job_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., run_id: _Optional[int] = ..., status: _Optional[_Union[JobStatus, str]] = ..., parameters: _Optional[_Iterable[_Union[_parameters_pb2.Parameter, _Mapping]]] = ..., attempts: _Optional[int] = ..., runner_id: _Optional[str] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., attempt_history: _Optional[_Iterable[_Union[Attempt, _Mapping]]] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., runner_losses: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class RunnerCapabilities(_message.Message):
    __slots__ = ("max_concurrent_jobs", "supported_simulation_types", "gpu_available", "memory_gb", "cpu_cores")
    MAX_CONCURRENT_JOBS_FIELD_NUMBER: _ClassVar[int]
    SUPPORTED_SIMULATION_TYPES_FIELD_NUMBER: _ClassVar[int]
    GPU_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_GB_FIELD_NUMBER: _ClassVar[int]
    CPU_CORES_FIELD_NUMBER: _ClassVar[int]
    max_concurrent_jobs: int
    supported_simulation_types: _containers.RepeatedScalarFieldContainer[str]
    gpu_available: bool
    memory_gb: float
    cpu_cores: int
    def __init__(self, max_concurrent_jobs: _Optional[int] = ..., supported_simulation_types: _Optional[_Iterable[str]] = ..., gpu_available: _Optional[bool] = ..., memory_gb: _Optional[float] = ..., cpu_cores: _Optional[int] = ...) -> None: ...

class Runner(_message.Message):
    __slots__ = ("runner_id", "name", "engines", "capabilities", "status", "last_heartbeat", "running_jobs", "draining", "job_ids")
    RUNNER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENGINES_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    RUNNING_JOBS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    runner_id: str
    name: str
    engines: _containers.RepeatedScalarFieldContainer[str]
    capabilities: RunnerCapabilities
    status: RunnerStatus
    last_heartbeat: _timestamp_pb2.Timestamp
    running_jobs: int
    draining: bool
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, runner_id: _Optional[str] = ..., name: _Optional[str] = ..., engines: _Optional[_Iterable[str]] = ..., capabilities: _Optional[_Union[RunnerCapabilities, _Mapping]] = ..., status: _Optional[_Union[RunnerStatus, str]] = ..., last_heartbeat: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., running_jobs: _Optional[int] = ..., draining: _Optional[bool] = ..., job_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("name", "runs_override", "config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUNS_OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    runs_override: int
    config: _batch_config_pb2.BatchConfig
    def __init__(self, name: _Optional[str] = ..., runs_override: _Optional[int] = ..., config: _Optional[_Union[_batch_config_pb2.BatchConfig, _Mapping]] = ...) -> None: ...

class SubmitBatchResponse(_message.Message):
    __slots__ = ("batch_id", "total_jobs", "estimated_completion_time_mins", "seed", "warnings")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_JOBS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COMPLETION_TIME_MINS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    total_jobs: int
    estimated_completion_time_mins: float
    seed: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, batch_id: _Optional[str] = ..., total_jobs: _Optional[int] = ..., estimated_completion_time_mins: _Optional[float] = ..., seed: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class PreviewRequest(_message.Message):
    __slots__ = ("runs_override", "config", "limit", "name")
    RUNS_OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    runs_override: int
    config: _batch_config_pb2.BatchConfig
    limit: int
    name: str
    def __init__(self, runs_override: _Optional[int] = ..., config: _Optional[_Union[_batch_config_pb2.BatchConfig, _Mapping]] = ..., limit: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class PreviewResponse(_message.Message):
    __slots__ = ("seed", "total_runs", "warnings", "run_config_json")
    SEED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RUNS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    RUN_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    seed: int
    total_runs: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    run_config_json: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, seed: _Optional[int] = ..., total_runs: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ..., run_config_json: _Optional[_Iterable[str]] = ...) -> None: ...

class ExtendBatchRequest(_message.Message):
    __slots__ = ("batch_id", "runs")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    runs: int
    def __init__(self, batch_id: _Optional[str] = ..., runs: _Optional[int] = ...) -> None: ...

class ExtendBatchResponse(_message.Message):
    __slots__ = ("batch", "added_jobs", "warnings")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    ADDED_JOBS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    batch: Batch
    added_jobs: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, batch: _Optional[_Union[Batch, _Mapping]] = ..., added_jobs: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class RerunFailedRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class RerunFailedResponse(_message.Message):
    __slots__ = ("batch", "requeued_jobs")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    REQUEUED_JOBS_FIELD_NUMBER: _ClassVar[int]
    batch: Batch
    requeued_jobs: int
    def __init__(self, batch: _Optional[_Union[Batch, _Mapping]] = ..., requeued_jobs: _Optional[int] = ...) -> None: ...

class GetBatchRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class GetBatchResponse(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: Batch
    def __init__(self, batch: _Optional[_Union[Batch, _Mapping]] = ...) -> None: ...

class ListBatchesRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListBatchesResponse(_message.Message):
    __slots__ = ("batches",)
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[Batch]
    def __init__(self, batches: _Optional[_Iterable[_Union[Batch, _Mapping]]] = ...) -> None: ...

class CancelBatchRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class CancelBatchResponse(_message.Message):
    __slots__ = ("batch", "cancelled_jobs")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_JOBS_FIELD_NUMBER: _ClassVar[int]
    batch: Batch
    cancelled_jobs: int
    def __init__(self, batch: _Optional[_Union[Batch, _Mapping]] = ..., cancelled_jobs: _Optional[int] = ...) -> None: ...

class GetBatchResultsRequest(_message.Message):
    __slots__ = ("batch_id",)
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    def __init__(self, batch_id: _Optional[str] = ...) -> None: ...

class GetBatchResultsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[JobResult]
    def __init__(self, results: _Optional[_Iterable[_Union[JobResult, _Mapping]]] = ...) -> None: ...

class StreamRunsRequest(_message.Message):
    __slots__ = ("batch_id", "page_size", "columnar")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    COLUMNAR_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    page_size: int
    columnar: bool
    def __init__(self, batch_id: _Optional[str] = ..., page_size: _Optional[int] = ..., columnar: _Optional[bool] = ...) -> None: ...

class StreamRunsResponse(_message.Message):
    __slots__ = ("runs", "page")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    page: RunsPage
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., page: _Optional[_Union[RunsPage, _Mapping]] = ...) -> None: ...

class RunsPage(_message.Message):
    __slots__ = ("run_ids", "job_ids", "seeds", "inputs", "outputs", "statuses", "termination_reasons", "attempts", "execution_time_secs", "runner_ids", "termination_variables", "termination_conditions", "finished_at_unix_nanos", "exit_codes", "termination_value_rows", "termination_values", "error_message_rows", "error_messages")
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_REASONS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_SECS_FIELD_NUMBER: _ClassVar[int]
    RUNNER_IDS_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_VARIABLES_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_UNIX_NANOS_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODES_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_VALUE_ROWS_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_VALUES_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_ROWS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    run_ids: _containers.RepeatedScalarFieldContainer[int]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    seeds: _containers.RepeatedScalarFieldContainer[int]
    inputs: _containers.RepeatedCompositeFieldContainer[_parameters_pb2.RunColumns]
    outputs: _containers.RepeatedCompositeFieldContainer[OutputColumn]
    statuses: _containers.RepeatedScalarFieldContainer[JobStatus]
    termination_reasons: _containers.RepeatedScalarFieldContainer[TerminationReason]
    attempts: _containers.RepeatedScalarFieldContainer[int]
    execution_time_secs: _containers.RepeatedScalarFieldContainer[float]
    runner_ids: _containers.RepeatedScalarFieldContainer[str]
    termination_variables: _containers.RepeatedScalarFieldContainer[str]
    termination_conditions: _containers.RepeatedScalarFieldContainer[str]
    finished_at_unix_nanos: _containers.RepeatedScalarFieldContainer[int]
    exit_codes: _containers.RepeatedScalarFieldContainer[int]
    termination_value_rows: _containers.RepeatedScalarFieldContainer[int]
    termination_values: _containers.RepeatedScalarFieldContainer[float]
    error_message_rows: _containers.RepeatedScalarFieldContainer[int]
    error_messages: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, run_ids: _Optional[_Iterable[int]] = ..., job_ids: _Optional[_Iterable[str]] = ..., seeds: _Optional[_Iterable[int]] = ..., inputs: _Optional[_Iterable[_Union[_parameters_pb2.RunColumns, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[OutputColumn, _Mapping]]] = ..., statuses: _Optional[_Iterable[_Union[JobStatus, str]]] = ..., termination_reasons: _Optional[_Iterable[_Union[TerminationReason, str]]] = ..., attempts: _Optional[_Iterable[int]] = ..., execution_time_secs: _Optional[_Iterable[float]] = ..., runner_ids: _Optional[_Iterable[str]] = ..., termination_variables: _Optional[_Iterable[str]] = ..., termination_conditions: _Optional[_Iterable[str]] = ..., finished_at_unix_nanos: _Optional[_Iterable[int]] = ..., exit_codes: _Optional[_Iterable[int]] = ..., termination_value_rows: _Optional[_Iterable[int]] = ..., termination_values: _Optional[_Iterable[float]] = ..., error_message_rows: _Optional[_Iterable[int]] = ..., error_messages: _Optional[_Iterable[str]] = ...) -> None: ...

class OutputColumn(_message.Message):
    __slots__ = ("name", "rows", "numbers", "integers", "texts", "flags")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    INTEGERS_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    rows: _containers.RepeatedScalarFieldContainer[int]
    numbers: _parameters_pb2.DoubleColumn
    integers: _parameters_pb2.IntegerColumn
    texts: _parameters_pb2.StringColumn
    flags: FlagColumn
    def __init__(self, name: _Optional[str] = ..., rows: _Optional[_Iterable[int]] = ..., numbers: _Optional[_Union[_parameters_pb2.DoubleColumn, _Mapping]] = ..., integers: _Optional[_Union[_parameters_pb2.IntegerColumn, _Mapping]] = ..., texts: _Optional[_Union[_parameters_pb2.StringColumn, _Mapping]] = ..., flags: _Optional[_Union[FlagColumn, _Mapping]] = ...) -> None: ...

class FlagColumn(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, values: _Optional[_Iterable[bool]] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("job_id", "run_id", "seed", "parameters", "outputs", "status", "termination_reason", "attempts", "execution_time_secs", "runner_id", "termination_variable", "termination_condition", "termination_value", "finished_at", "error_message", "exit_code")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_TIME_SECS_FIELD_NUMBER: _ClassVar[int]
    RUNNER_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_VARIABLE_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_CONDITION_FIELD_NUMBER: _ClassVar[int]
    TERMINATION_VALUE_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    run_id: int
    seed: int
    parameters: _containers.RepeatedCompositeFieldContainer[_parameters_pb2.Parameter]
    outputs: _containers.RepeatedCompositeFieldContainer[_parameters_pb2.Parameter]
    status: JobStatus
    termination_reason: TerminationReason
    attempts: int
    execution_time_secs: float
    runner_id: str
    termination_variable: str
    termination_condition: str
    termination_value: float
    finished_at: _timestamp_pb2.Timestamp
    error_message: str
    exit_code: int
    def __init__(self, job_id: _Optional[str] = ..., run_id: _Optional[int] = ..., seed: _Optional[int] = ..., parameters: _Optional[_Iterable[_Union[_parameters_pb2.Parameter, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[_parameters_pb2.Parameter, _Mapping]]] = ..., status: _Optional[_Union[JobStatus, str]] = ..., termination_reason: _Optional[_Union[TerminationReason, str]] = ..., attempts: _Optional[int] = ..., execution_time_secs: _Optional[float] = ..., runner_id: _Optional[str] = ..., termination_variable: _Optional[str] = ..., termination_condition: _Optional[str] = ..., termination_value: _Optional[float] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error_message: _Optional[str] = ..., exit_code: _Optional[int] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("batch_id", "page_size", "page_token")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    page_size: int
    page_token: str
    def __init__(self, batch_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class ListRunnersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRunnersResponse(_message.Message):
    __slots__ = ("runners",)
    RUNNERS_FIELD_NUMBER: _ClassVar[int]
    runners: _containers.RepeatedCompositeFieldContainer[Runner]
    def __init__(self, runners: _Optional[_Iterable[_Union[Runner, _Mapping]]] = ...) -> None: ...

class GetRunnerRequest(_message.Message):
    __slots__ = ("runner_id",)
    RUNNER_ID_FIELD_NUMBER: _ClassVar[int]
    runner_id: str
    def __init__(self, runner_id: _Optional[str] = ...) -> None: ...

class GetRunnerResponse(_message.Message):
    __slots__ = ("runner",)
    RUNNER_FIELD_NUMBER: _ClassVar[int]
    runner: Runner
    def __init__(self, runner: _Optional[_Union[Runner, _Mapping]] = ...) -> None: ...

class ConnectRequest(_message.Message):
    __slots__ = ("register", "heartbeat", "job_started", "job_finished", "job_released", "draining")
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    JOB_STARTED_FIELD_NUMBER: _ClassVar[int]
    JOB_FINISHED_FIELD_NUMBER: _ClassVar[int]
    JOB_RELEASED_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    register: RegisterRunner
    heartbeat: Heartbeat
    job_started: JobStarted
    job_finished: JobFinished
    job_released: JobReleased
    draining: Draining
    def __init__(self, register: _Optional[_Union[RegisterRunner, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., job_started: _Optional[_Union[JobStarted, _Mapping]] = ..., job_finished: _Optional[_Union[JobFinished, _Mapping]] = ..., job_released: _Optional[_Union[JobReleased, _Mapping]] = ..., draining: _Optional[_Union[Draining, _Mapping]] = ...) -> None: ...

class RegisterRunner(_message.Message):
    __slots__ = ("runner_id", "name", "engines", "capabilities", "heartbeat_interval_secs", "running_jobs")
    RUNNER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENGINES_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_JOBS_FIELD_NUMBER: _ClassVar[int]
    runner_id: str
    name: str
    engines: _containers.RepeatedScalarFieldContainer[str]
    capabilities: RunnerCapabilities
    heartbeat_interval_secs: float
    running_jobs: _containers.RepeatedCompositeFieldContainer[RunningJob]
    def __init__(self, runner_id: _Optional[str] = ..., name: _Optional[str] = ..., engines: _Optional[_Iterable[str]] = ..., capabilities: _Optional[_Union[RunnerCapabilities, _Mapping]] = ..., heartbeat_interval_secs: _Optional[float] = ..., running_jobs: _Optional[_Iterable[_Union[RunningJob, _Mapping]]] = ...) -> None: ...

class RunningJob(_message.Message):
    __slots__ = ("job_id", "attempt")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("running_jobs", "lease_ahead")
    RUNNING_JOBS_FIELD_NUMBER: _ClassVar[int]
    LEASE_AHEAD_FIELD_NUMBER: _ClassVar[int]
    running_jobs: _containers.RepeatedCompositeFieldContainer[RunningJob]
    lease_ahead: int
    def __init__(self, running_jobs: _Optional[_Iterable[_Union[RunningJob, _Mapping]]] = ..., lease_ahead: _Optional[int] = ...) -> None: ...

class JobStarted(_message.Message):
    __slots__ = ("job_id", "attempt")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class JobFinished(_message.Message):
    __slots__ = ("job_id", "attempt", "result")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    result: JobResult
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ...) -> None: ...

class JobReleased(_message.Message):
    __slots__ = ("job_id", "attempt", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class Draining(_message.Message):
    __slots__ = ("grace_seconds",)
    GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    grace_seconds: float
    def __init__(self, grace_seconds: _Optional[float] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("registered", "lease", "cancel", "ack")
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    registered: Registered
    lease: JobLease
    cancel: CancelJob
    ack: ReportAck
    def __init__(self, registered: _Optional[_Union[Registered, _Mapping]] = ..., lease: _Optional[_Union[JobLease, _Mapping]] = ..., cancel: _Optional[_Union[CancelJob, _Mapping]] = ..., ack: _Optional[_Union[ReportAck, _Mapping]] = ...) -> None: ...

class Registered(_message.Message):
    __slots__ = ("runner_id",)
    RUNNER_ID_FIELD_NUMBER: _ClassVar[int]
    runner_id: str
    def __init__(self, runner_id: _Optional[str] = ...) -> None: ...

class JobLease(_message.Message):
    __slots__ = ("job_id", "batch_id", "attempt", "engine", "run_config_json", "timeout_seconds", "early_termination", "telemetry", "compute", "outputs")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    RUN_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EARLY_TERMINATION_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    batch_id: str
    attempt: int
    engine: str
    run_config_json: str
    timeout_seconds: float
    early_termination: _batch_config_pb2.EarlyTermination
    telemetry: _batch_config_pb2.TelemetryConfig
    compute: _batch_config_pb2.Compute
    outputs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., attempt: _Optional[int] = ..., engine: _Optional[str] = ..., run_config_json: _Optional[str] = ..., timeout_seconds: _Optional[float] = ..., early_termination: _Optional[_Union[_batch_config_pb2.EarlyTermination, _Mapping]] = ..., telemetry: _Optional[_Union[_batch_config_pb2.TelemetryConfig, _Mapping]] = ..., compute: _Optional[_Union[_batch_config_pb2.Compute, _Mapping]] = ..., outputs: _Optional[_Iterable[str]] = ...) -> None: ...

class CancelJob(_message.Message):
    __slots__ = ("job_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReportAck(_message.Message):
    __slots__ = ("job_id", "attempt", "accepted")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    accepted: bool
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., accepted: _Optional[bool] = ...) -> None: ...
