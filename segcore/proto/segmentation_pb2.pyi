from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class SegmentRequest(_message.Message):
    __slots__ = ("model", "image", "options")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    image: bytes
    options: _containers.ScalarMap[str, str]
    def __init__(self, model: _Optional[str] = ..., image: _Optional[bytes] = ..., options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SegmentResponse(_message.Message):
    __slots__ = ("model", "width", "height", "label_png", "probability_png", "probability_class", "class_names", "num_classes", "classes_present", "timings_ms")
    class TimingsMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    LABEL_PNG_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_PNG_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_CLASS_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    CLASSES_PRESENT_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_MS_FIELD_NUMBER: _ClassVar[int]
    model: str
    width: int
    height: int
    label_png: bytes
    probability_png: bytes
    probability_class: int
    class_names: _containers.RepeatedScalarFieldContainer[str]
    num_classes: int
    classes_present: _containers.RepeatedScalarFieldContainer[int]
    timings_ms: _containers.ScalarMap[str, float]
    def __init__(self, model: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., label_png: _Optional[bytes] = ..., probability_png: _Optional[bytes] = ..., probability_class: _Optional[int] = ..., class_names: _Optional[_Iterable[str]] = ..., num_classes: _Optional[int] = ..., classes_present: _Optional[_Iterable[int]] = ..., timings_ms: _Optional[_Mapping[str, float]] = ...) -> None: ...
