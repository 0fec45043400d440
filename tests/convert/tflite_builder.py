"""Write tiny, real .tflite flatbuffers at test time (schema v3, one subgraph) with the `tflite` package."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np
import tflite

_TYPES = {np.dtype("float32"): tflite.TensorType.FLOAT32, np.dtype("float16"): tflite.TensorType.FLOAT16}
_TYPES[np.dtype("int32")] = tflite.TensorType.INT32


@dataclass
class T:
    """A tensor: NHWC shape, dtype, and constant data (None for activations)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    data: np.ndarray | None = None


@dataclass
class Op:
    """A builtin op by name (e.g. "CONV_2D") or "CUSTOM:<code>"; options as (TableName, {Field: value})."""

    kind: str
    inputs: list[int]
    outputs: list[int]
    options: tuple[str, dict[str, Any]] | None = None
    custom_options: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)


def const(name: str, value: np.ndarray) -> T:
    return T(name, tuple(value.shape), str(value.dtype), value)


def build(tensors: list[T], ops: list[Op], inputs: list[int], outputs: list[int]) -> bytes:
    """Serialise a single-subgraph model; buffer 0 is the empty sentinel, as the schema requires."""
    b = flatbuffers.Builder(4096)
    buffers = [_buffer(b, None)]
    tensor_offsets = []
    for t in tensors:
        buf_index = 0
        if t.data is not None:
            buffers.append(_buffer(b, np.ascontiguousarray(t.data, dtype=t.dtype).tobytes()))
            buf_index = len(buffers) - 1
        name = b.CreateString(t.name)
        shape = b.CreateNumpyVector(np.asarray(t.shape, dtype=np.int32))
        tflite.TensorStart(b)
        tflite.TensorAddShape(b, shape)
        tflite.TensorAddType(b, _TYPES[np.dtype(t.dtype)])
        tflite.TensorAddBuffer(b, buf_index)
        tflite.TensorAddName(b, name)
        tensor_offsets.append(tflite.TensorEnd(b))
    kinds = list(dict.fromkeys(op.kind for op in ops))
    code_offsets = [_opcode(b, kind) for kind in kinds]
    op_offsets = [_operator(b, op, kinds.index(op.kind)) for op in ops]
    tensors_vec, ops_vec = _vector(b, tensor_offsets), _vector(b, op_offsets)
    ins, outs = (b.CreateNumpyVector(np.asarray(v, dtype=np.int32)) for v in (inputs, outputs))
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensors_vec)
    tflite.SubGraphAddInputs(b, ins)
    tflite.SubGraphAddOutputs(b, outs)
    tflite.SubGraphAddOperators(b, ops_vec)
    subgraph = tflite.SubGraphEnd(b)
    subgraphs, codes, bufs = _vector(b, [subgraph]), _vector(b, code_offsets), _vector(b, buffers)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes)
    tflite.ModelAddSubgraphs(b, subgraphs)
    tflite.ModelAddBuffers(b, bufs)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def _buffer(b: flatbuffers.Builder, data: bytes | None) -> int:
    vec = None
    if data:
        b.StartVector(1, len(data), 16)  # keep weights 16-byte aligned for the runtime
        b.head = b.head - len(data)
        b.Bytes[b.head : b.head + len(data)] = data
        vec = b.EndVector()
    tflite.BufferStart(b)
    if vec is not None:
        tflite.BufferAddData(b, vec)
    return tflite.BufferEnd(b)


def _opcode(b: flatbuffers.Builder, kind: str) -> int:
    custom = b.CreateString(kind.split(":", 1)[1]) if kind.startswith("CUSTOM:") else None
    code = tflite.BuiltinOperator.CUSTOM if custom is not None else getattr(tflite.BuiltinOperator, kind)
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
    tflite.OperatorCodeAddBuiltinCode(b, code)
    tflite.OperatorCodeAddVersion(b, 1)
    if custom is not None:
        tflite.OperatorCodeAddCustomCode(b, custom)
    return tflite.OperatorCodeEnd(b)


def _operator(b: flatbuffers.Builder, op: Op, opcode_index: int) -> int:
    ins, outs = (b.CreateNumpyVector(np.asarray(v, dtype=np.int32)) for v in (op.inputs, op.outputs))
    opts = None
    if op.options is not None:
        table, fields = op.options
        getattr(tflite, f"{table}Start")(b)
        for key, value in fields.items():
            getattr(tflite, f"{table}Add{key}")(b, value)
        opts = getattr(tflite, f"{table}End")(b)
    custom = b.CreateNumpyVector(np.frombuffer(op.custom_options, dtype=np.uint8)) if op.custom_options else None
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, opcode_index)
    tflite.OperatorAddInputs(b, ins)
    tflite.OperatorAddOutputs(b, outs)
    if opts is not None:
        tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, op.options[0]))
        tflite.OperatorAddBuiltinOptions(b, opts)
    if custom is not None:
        tflite.OperatorAddCustomOptions(b, custom)
    return tflite.OperatorEnd(b)
