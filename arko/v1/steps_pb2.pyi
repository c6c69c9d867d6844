from arko.v1 import jobs_pb2 as _jobs_pb2
from arko.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StepRequest(_message.Message):
    __slots__ = ("step", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STEP_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    step: str
    params: _containers.ScalarMap[str, str]
    def __init__(self, step: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class StepOutput(_message.Message):
    __slots__ = ("stream", "text", "number", "exit_code")
    class Stream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STREAM_UNSPECIFIED: _ClassVar[StepOutput.Stream]
        STDOUT: _ClassVar[StepOutput.Stream]
        STDERR: _ClassVar[StepOutput.Stream]
        EXIT: _ClassVar[StepOutput.Stream]
    STREAM_UNSPECIFIED: StepOutput.Stream
    STDOUT: StepOutput.Stream
    STDERR: StepOutput.Stream
    EXIT: StepOutput.Stream
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    stream: StepOutput.Stream
    text: str
    number: int
    exit_code: int
    def __init__(self, stream: _Optional[_Union[StepOutput.Stream, str]] = ..., text: _Optional[str] = ..., number: _Optional[int] = ..., exit_code: _Optional[int] = ...) -> None: ...

class PipelineRequest(_message.Message):
    __slots__ = ("pipeline", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PIPELINE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    pipeline: str
    params: _containers.ScalarMap[str, str]
    def __init__(self, pipeline: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PipelineProgress(_message.Message):
    __slots__ = ("step", "job_id", "state", "slave", "error")
    STEP_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SLAVE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    step: str
    job_id: str
    state: _jobs_pb2.JobState
    slave: str
    error: str
    def __init__(self, step: _Optional[str] = ..., job_id: _Optional[str] = ..., state: _Optional[_Union[_jobs_pb2.JobState, str]] = ..., slave: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class ListStepsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StepParam(_message.Message):
    __slots__ = ("name", "pattern", "choices", "default", "required", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    pattern: str
    choices: _containers.RepeatedScalarFieldContainer[str]
    default: str
    required: bool
    description: str
    def __init__(self, name: _Optional[str] = ..., pattern: _Optional[str] = ..., choices: _Optional[_Iterable[str]] = ..., default: _Optional[str] = ..., required: _Optional[bool] = ..., description: _Optional[str] = ...) -> None: ...

class StepInfo(_message.Message):
    __slots__ = ("name", "description", "params", "timeout_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    params: _containers.RepeatedCompositeFieldContainer[StepParam]
    timeout_seconds: float
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., params: _Optional[_Iterable[_Union[StepParam, _Mapping]]] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class ListStepsResponse(_message.Message):
    __slots__ = ("steps",)
    STEPS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[StepInfo]
    def __init__(self, steps: _Optional[_Iterable[_Union[StepInfo, _Mapping]]] = ...) -> None: ...
