from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class MyPipelineConfig(_message.Message):
    __slots__ = ("param", "password")
    PARAM_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    param: str
    password: str
    def __init__(self, param: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class PipelineStatus(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class LogsRequest(_message.Message):
    __slots__ = ("lines", "interval", "prefix")
    LINES_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    lines: int
    interval: float
    prefix: str
    def __init__(self, lines: _Optional[int] = ..., interval: _Optional[float] = ..., prefix: _Optional[str] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("number", "text")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    number: int
    text: str
    def __init__(self, number: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...
