from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TelemetrySample(_message.Message):
    __slots__ = ("timestamp_ns", "values")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    timestamp_ns: int
    values: _containers.ScalarMap[str, float]
    def __init__(self, timestamp_ns: _Optional[int] = ..., values: _Optional[_Mapping[str, float]] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("job_id", "batch_id", "samples", "dropped_samples", "blocks", "storage")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    DROPPED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    batch_id: str
    samples: _containers.RepeatedCompositeFieldContainer[TelemetrySample]
    dropped_samples: int
    blocks: _containers.RepeatedCompositeFieldContainer[SampleBlock]
    storage: StorageTarget
    def __init__(self, job_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., samples: _Optional[_Iterable[_Union[TelemetrySample, _Mapping]]] = ..., dropped_samples: _Optional[int] = ..., blocks: _Optional[_Iterable[_Union[SampleBlock, _Mapping]]] = ..., storage: _Optional[_Union[StorageTarget, _Mapping]] = ...) -> None: ...

class SampleBlock(_message.Message):
    __slots__ = ("variables", "timestamps_ns", "values")
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_NS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    variables: _containers.RepeatedScalarFieldContainer[str]
    timestamps_ns: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, variables: _Optional[_Iterable[str]] = ..., timestamps_ns: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class StorageTarget(_message.Message):
    __slots__ = ("s3_bucket", "s3_prefix", "compression")
    S3_BUCKET_FIELD_NUMBER: _ClassVar[int]
    S3_PREFIX_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    s3_bucket: str
    s3_prefix: str
    compression: str
    def __init__(self, s3_bucket: _Optional[str] = ..., s3_prefix: _Optional[str] = ..., compression: _Optional[str] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("accepted_samples",)
    ACCEPTED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    accepted_samples: int
    def __init__(self, accepted_samples: _Optional[int] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("job_id", "variables", "start_ns", "end_ns", "limit", "page_token", "page_points")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    START_NS_FIELD_NUMBER: _ClassVar[int]
    END_NS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PAGE_POINTS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    variables: _containers.RepeatedScalarFieldContainer[str]
    start_ns: int
    end_ns: int
    limit: int
    page_token: str
    page_points: int
    def __init__(self, job_id: _Optional[str] = ..., variables: _Optional[_Iterable[str]] = ..., start_ns: _Optional[int] = ..., end_ns: _Optional[int] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ..., page_points: _Optional[int] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("series", "next_page_token")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[Series]
    next_page_token: str
    def __init__(self, series: _Optional[_Iterable[_Union[Series, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Series(_message.Message):
    __slots__ = ("variable", "timestamps_ns", "values")
    VARIABLE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_NS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    variable: str
    timestamps_ns: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, variable: _Optional[str] = ..., timestamps_ns: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("batch_id", "job_id", "variables")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    job_id: str
    variables: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, batch_id: _Optional[str] = ..., job_id: _Optional[str] = ..., variables: _Optional[_Iterable[str]] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("job_id", "batch_id", "samples")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    batch_id: str
    samples: _containers.RepeatedCompositeFieldContainer[TelemetrySample]
    def __init__(self, job_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., samples: _Optional[_Iterable[_Union[TelemetrySample, _Mapping]]] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("job_id", "batch_id", "variables", "start_ns", "end_ns", "compression")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    START_NS_FIELD_NUMBER: _ClassVar[int]
    END_NS_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    batch_id: str
    variables: _containers.RepeatedScalarFieldContainer[str]
    start_ns: int
    end_ns: int
    compression: str
    def __init__(self, job_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., variables: _Optional[_Iterable[str]] = ..., start_ns: _Optional[int] = ..., end_ns: _Optional[int] = ..., compression: _Optional[str] = ...) -> None: ...

class ExportResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...
