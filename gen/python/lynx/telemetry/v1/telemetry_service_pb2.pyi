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
    __slots__ = ("job_id", "batch_id", "samples", "dropped_samples")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    DROPPED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    batch_id: str
    samples: _containers.RepeatedCompositeFieldContainer[TelemetrySample]
    dropped_samples: int
    def __init__(self, job_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., samples: _Optional[_Iterable[_Union[TelemetrySample, _Mapping]]] = ..., dropped_samples: _Optional[int] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("accepted_samples",)
    ACCEPTED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    accepted_samples: int
    def __init__(self, accepted_samples: _Optional[int] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("job_id", "variables", "start_ns", "end_ns", "limit")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    START_NS_FIELD_NUMBER: _ClassVar[int]
    END_NS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    variables: _containers.RepeatedScalarFieldContainer[str]
    start_ns: int
    end_ns: int
    limit: int
    def __init__(self, job_id: _Optional[str] = ..., variables: _Optional[_Iterable[str]] = ..., start_ns: _Optional[int] = ..., end_ns: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("series",)
    SERIES_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[Series]
    def __init__(self, series: _Optional[_Iterable[_Union[Series, _Mapping]]] = ...) -> None: ...

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
