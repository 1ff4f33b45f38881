from lynx.common.v1 import batch_config_pb2 as _batch_config_pb2
from lynx.common.v1 import parameters_pb2 as _parameters_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SampleRequest(_message.Message):
    __slots__ = ("dispersions", "sampling_method", "runs", "seed", "optimization", "correlation", "existing_runs")
    DISPERSIONS_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_METHOD_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZATION_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_FIELD_NUMBER: _ClassVar[int]
    EXISTING_RUNS_FIELD_NUMBER: _ClassVar[int]
    dispersions: _containers.RepeatedCompositeFieldContainer[_batch_config_pb2.Dispersion]
    sampling_method: str
    runs: int
    seed: int
    optimization: str
    correlation: _batch_config_pb2.Correlation
    existing_runs: int
    def __init__(self, dispersions: _Optional[_Iterable[_Union[_batch_config_pb2.Dispersion, _Mapping]]] = ..., sampling_method: _Optional[str] = ..., runs: _Optional[int] = ..., seed: _Optional[int] = ..., optimization: _Optional[str] = ..., correlation: _Optional[_Union[_batch_config_pb2.Correlation, _Mapping]] = ..., existing_runs: _Optional[int] = ...) -> None: ...

class SampleResponse(_message.Message):
    __slots__ = ("total_runs", "warnings", "runs")
    TOTAL_RUNS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    total_runs: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    runs: _parameters_pb2.RunColumns
    def __init__(self, total_runs: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ..., runs: _Optional[_Union[_parameters_pb2.RunColumns, _Mapping]] = ...) -> None: ...
