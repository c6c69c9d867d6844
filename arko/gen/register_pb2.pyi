from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class SlaveConfig(_message.Message):
    __slots__ = ("host", "port", "token", "call_secret", "call_nonce", "registration_nonce")
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CALL_SECRET_FIELD_NUMBER: _ClassVar[int]
    CALL_NONCE_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_NONCE_FIELD_NUMBER: _ClassVar[int]
    host: str
    port: int
    token: str
    call_secret: str
    call_nonce: str
    registration_nonce: str
    def __init__(self, host: _Optional[str] = ..., port: _Optional[int] = ..., token: _Optional[str] = ..., call_secret: _Optional[str] = ..., call_nonce: _Optional[str] = ..., registration_nonce: _Optional[str] = ...) -> None: ...

class SlaveRegisterStatus(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...
