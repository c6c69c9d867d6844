from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class JobParams(_message.Message):
    __slots__ = ("method", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    method: str
    params: _containers.ScalarMap[str, str]
    def __init__(self, method: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class JobStatus(_message.Message):
    __slots__ = ("message", "job_id")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    message: str
    job_id: str
    def __init__(self, message: _Optional[str] = ..., job_id: _Optional[str] = ...) -> None: ...
