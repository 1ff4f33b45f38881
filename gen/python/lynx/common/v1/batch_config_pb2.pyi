from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BatchConfig(_message.Message):
    __slots__ = ("simulation", "monte_carlo", "dispersions", "compute", "early_termination", "telemetry", "results")
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    MONTE_CARLO_FIELD_NUMBER: _ClassVar[int]
    DISPERSIONS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_FIELD_NUMBER: _ClassVar[int]
    EARLY_TERMINATION_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    simulation: Simulation
    monte_carlo: MonteCarlo
    dispersions: _containers.RepeatedCompositeFieldContainer[Dispersion]
    compute: Compute
    early_termination: EarlyTermination
    telemetry: TelemetryConfig
    results: ResultsConfig
    def __init__(self, simulation: _Optional[_Union[Simulation, _Mapping]] = ..., monte_carlo: _Optional[_Union[MonteCarlo, _Mapping]] = ..., dispersions: _Optional[_Iterable[_Union[Dispersion, _Mapping]]] = ..., compute: _Optional[_Union[Compute, _Mapping]] = ..., early_termination: _Optional[_Union[EarlyTermination, _Mapping]] = ..., telemetry: _Optional[_Union[TelemetryConfig, _Mapping]] = ..., results: _Optional[_Union[ResultsConfig, _Mapping]] = ...) -> None: ...

class ResultsConfig(_message.Message):
    __slots__ = ("outputs",)
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    outputs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, outputs: _Optional[_Iterable[str]] = ...) -> None: ...

class Simulation(_message.Message):
    __slots__ = ("name", "version", "duration_minutes", "engine", "type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DURATION_MINUTES_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    duration_minutes: float
    engine: str
    type: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., duration_minutes: _Optional[float] = ..., engine: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class MonteCarlo(_message.Message):
    __slots__ = ("runs", "sampling_method", "seed", "optimization", "correlation")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_METHOD_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZATION_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_FIELD_NUMBER: _ClassVar[int]
    runs: int
    sampling_method: str
    seed: int
    optimization: str
    correlation: Correlation
    def __init__(self, runs: _Optional[int] = ..., sampling_method: _Optional[str] = ..., seed: _Optional[int] = ..., optimization: _Optional[str] = ..., correlation: _Optional[_Union[Correlation, _Mapping]] = ...) -> None: ...

class Correlation(_message.Message):
    __slots__ = ("parameters", "matrix")
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    MATRIX_FIELD_NUMBER: _ClassVar[int]
    parameters: _containers.RepeatedScalarFieldContainer[str]
    matrix: _struct_pb2.ListValue
    def __init__(self, parameters: _Optional[_Iterable[str]] = ..., matrix: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ...) -> None: ...

class Dispersion(_message.Message):
    __slots__ = ("name", "distribution", "units")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    name: str
    distribution: Distribution
    units: str
    def __init__(self, name: _Optional[str] = ..., distribution: _Optional[_Union[Distribution, _Mapping]] = ..., units: _Optional[str] = ...) -> None: ...

class Distribution(_message.Message):
    __slots__ = ("type", "min", "max", "mean", "std", "value", "mode", "alpha", "beta", "mu", "sigma", "rate", "values", "weights", "levels")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    BETA_FIELD_NUMBER: _ClassVar[int]
    MU_FIELD_NUMBER: _ClassVar[int]
    SIGMA_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    type: str
    min: float
    max: float
    mean: float
    std: float
    value: float
    mode: float
    alpha: float
    beta: float
    mu: float
    sigma: float
    rate: float
    values: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    weights: _containers.RepeatedScalarFieldContainer[float]
    levels: int
    def __init__(self, type: _Optional[str] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., mean: _Optional[float] = ..., std: _Optional[float] = ..., value: _Optional[float] = ..., mode: _Optional[float] = ..., alpha: _Optional[float] = ..., beta: _Optional[float] = ..., mu: _Optional[float] = ..., sigma: _Optional[float] = ..., rate: _Optional[float] = ..., values: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ..., weights: _Optional[_Iterable[float]] = ..., levels: _Optional[int] = ...) -> None: ...

class Compute(_message.Message):
    __slots__ = ("container", "max_parallel_jobs", "job_timeout_seconds", "max_retries", "max_failed_jobs", "retry_backoff_seconds", "retry_backoff_max_seconds", "retry_early_termination", "max_runner_losses")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    MAX_PARALLEL_JOBS_FIELD_NUMBER: _ClassVar[int]
    JOB_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILED_JOBS_FIELD_NUMBER: _ClassVar[int]
    RETRY_BACKOFF_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RETRY_BACKOFF_MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RETRY_EARLY_TERMINATION_FIELD_NUMBER: _ClassVar[int]
    MAX_RUNNER_LOSSES_FIELD_NUMBER: _ClassVar[int]
    container: Container
    max_parallel_jobs: int
    job_timeout_seconds: float
    max_retries: int
    max_failed_jobs: float
    retry_backoff_seconds: float
    retry_backoff_max_seconds: float
    retry_early_termination: bool
    max_runner_losses: int
    def __init__(self, container: _Optional[_Union[Container, _Mapping]] = ..., max_parallel_jobs: _Optional[int] = ..., job_timeout_seconds: _Optional[float] = ..., max_retries: _Optional[int] = ..., max_failed_jobs: _Optional[float] = ..., retry_backoff_seconds: _Optional[float] = ..., retry_backoff_max_seconds: _Optional[float] = ..., retry_early_termination: _Optional[bool] = ..., max_runner_losses: _Optional[int] = ...) -> None: ...

class Container(_message.Message):
    __slots__ = ("image", "cpu_request", "memory_request")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CPU_REQUEST_FIELD_NUMBER: _ClassVar[int]
    MEMORY_REQUEST_FIELD_NUMBER: _ClassVar[int]
    image: str
    cpu_request: str
    memory_request: str
    def __init__(self, image: _Optional[str] = ..., cpu_request: _Optional[str] = ..., memory_request: _Optional[str] = ...) -> None: ...

class EarlyTermination(_message.Message):
    __slots__ = ("enabled", "check_frequency_hz", "conditions")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    CHECK_FREQUENCY_HZ_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    check_frequency_hz: float
    conditions: _containers.RepeatedCompositeFieldContainer[TerminationCondition]
    def __init__(self, enabled: _Optional[bool] = ..., check_frequency_hz: _Optional[float] = ..., conditions: _Optional[_Iterable[_Union[TerminationCondition, _Mapping]]] = ...) -> None: ...

class TerminationCondition(_message.Message):
    __slots__ = ("variable", "condition", "description")
    VARIABLE_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    variable: str
    condition: str
    description: str
    def __init__(self, variable: _Optional[str] = ..., condition: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class TelemetryConfig(_message.Message):
    __slots__ = ("sampling_rate_hz", "variables", "storage", "buffer_flush_interval_seconds")
    SAMPLING_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    BUFFER_FLUSH_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    sampling_rate_hz: float
    variables: _containers.RepeatedScalarFieldContainer[str]
    storage: TelemetryStorage
    buffer_flush_interval_seconds: float
    def __init__(self, sampling_rate_hz: _Optional[float] = ..., variables: _Optional[_Iterable[str]] = ..., storage: _Optional[_Union[TelemetryStorage, _Mapping]] = ..., buffer_flush_interval_seconds: _Optional[float] = ...) -> None: ...

class TelemetryStorage(_message.Message):
    __slots__ = ("s3_bucket", "s3_prefix", "compression")
    S3_BUCKET_FIELD_NUMBER: _ClassVar[int]
    S3_PREFIX_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    s3_bucket: str
    s3_prefix: str
    compression: str
    def __init__(self, s3_bucket: _Optional[str] = ..., s3_prefix: _Optional[str] = ..., compression: _Optional[str] = ...) -> None: ...
