"""An Open Inference Protocol request inside a worker: model tensors in and out, or encoded images in (a BYTES
input, one image per element) and label maps / probabilities out, as `/v1/models/{m}/segment` computes them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from segcore.repository import ModelSpec
from server.codecs.kserve import datatype_of
from server.codecs.oip_tensors import BYTES, InferRequest, Tensor, output_tensor
from server.codecs.paddle_tensor import resolve_fetch
from server.errors import InvalidInput
from server.workers.image_job import ImageJobCodec

LABEL_MAP, PROBABILITY = "label_map", "probability"
IMAGE_OUTPUTS = (LABEL_MAP, PROBABILITY)
FinishTensors = Callable[[dict[str, np.ndarray]], list[Tensor]]


class OipJobCodec:
    """Feeds for the engine from an InferRequest, and the output tensors from the engine's outputs."""

    def __init__(self, spec: ModelSpec, input_shape: list[int | None] | None, images: ImageJobCodec | None) -> None:
        self.spec = spec
        self.input_shape = input_shape
        self.images = images

    def prepare(self, request: InferRequest) -> tuple[dict[str, np.ndarray], FinishTensors]:
        if any(t.datatype == BYTES for t in request.inputs):
            return self._images(request)
        return self._tensors(request)

    # ----- model tensors -----
    def _tensors(self, request: InferRequest) -> tuple[dict[str, np.ndarray], FinishTensors]:
        conf = self.spec.conf
        by_name = {v.alias: v for v in conf.feeds} | {v.name: v for v in conf.feeds}
        feeds: dict[str, np.ndarray] = {}
        for tensor in request.inputs:
            var = by_name.get(tensor.name)
            if var is None:
                known = ", ".join(v.alias for v in conf.feeds)
                raise InvalidInput(f"unknown input {tensor.name!r}; this model's inputs: {known} (or one BYTES "
                                   "input of encoded images)")  # fmt: skip
            expected = datatype_of(var.type_code)
            if expected != BYTES and tensor.datatype != expected:
                raise InvalidInput(f"input {tensor.name!r}: the model expects {expected}, got {tensor.datatype}")
            array = tensor.data
            assert isinstance(array, np.ndarray)
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise InvalidInput(f"input {tensor.name!r}: contains NaN or infinity")
            feeds[var.name] = array
        missing = [v.alias for v in conf.feeds if v.name not in feeds]
        if missing:
            raise InvalidInput(f"missing input(s): {', '.join(missing)}")
        self._check_shape(feeds)
        fetch = resolve_fetch([o.name for o in request.outputs], conf)

        def finish(outputs: dict[str, np.ndarray]) -> list[Tensor]:
            return [output_tensor(var.alias, outputs[var.name]) for var in fetch]

        return feeds, finish

    def _check_shape(self, feeds: dict[str, np.ndarray]) -> None:
        if self.input_shape is None or len(feeds) != 1:
            return
        array = next(iter(feeds.values()))
        dims = [None, *self.input_shape[1:]]  # any batch: a fixed-batch export runs it in pieces
        if array.ndim != len(dims) or any(d is not None and d != a for d, a in zip(dims, array.shape, strict=False)):
            wanted = "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
            raise InvalidInput(f"input shape {list(array.shape)} does not fit the model input {wanted}")

    # ----- encoded images -----
    def _images(self, request: InferRequest) -> tuple[dict[str, np.ndarray], FinishTensors]:
        if self.images is None:
            raise InvalidInput(f"model {self.spec.name!r} has no preprocessing config: send its input tensors")
        codec = self.images
        if len(request.inputs) != 1:
            raise InvalidInput("send encoded images as one BYTES input (one image per element), and nothing else")
        data = request.inputs[0].data
        assert isinstance(data, list)
        if not data:
            raise InvalidInput("the BYTES input holds no image")
        names = [o.name for o in request.outputs] or [LABEL_MAP]
        unknown = [n for n in names if n not in IMAGE_OUTPUTS]
        if unknown:
            raise InvalidInput(f"unknown output(s) {', '.join(map(repr, unknown))} for image inputs; "
                               f"outputs: {', '.join(IMAGE_OUTPUTS)}")  # fmt: skip
        class_id = None
        if PROBABILITY in names:
            asked = next((o.params.get("class_id") for o in request.outputs if o.name == PROBABILITY), None)
            asked = asked if asked is not None else request.params.get("class_id")
            if asked is not None and (not isinstance(asked, int) or isinstance(asked, bool)):
                raise InvalidInput(f"class_id must be an integer, got {asked!r}")
            class_id = codec.class_id(asked)
        loaded = [codec.load(item) for item in data]
        sizes = {image.shape[:2] for image, _, _ in loaded}
        shapes = {tensor.shape for _, tensor, _ in loaded}
        if len(sizes) > 1 or len(shapes) > 1:
            raise InvalidInput("images in one request must have the same size (their label maps form one tensor): "
                               "send images of different sizes in separate requests")  # fmt: skip
        feeds = {codec.input_name: np.stack([tensor for _, tensor, _ in loaded])}

        def finish(outputs: dict[str, np.ndarray]) -> list[Tensor]:
            results = [codec.segment(outputs, trans, class_id is not None, i) for i, (_, _, trans) in enumerate(loaded)]
            tensors = []
            for name in names:
                if name == LABEL_MAP:
                    wide = (codec.num_classes or 0) > 256
                    labels = np.stack([r.label_map for r in results]).astype(np.int32 if wide else np.uint8)
                    tensors.append(Tensor(LABEL_MAP, "INT32" if wide else "UINT8", list(labels.shape), labels))
                else:
                    assert class_id is not None
                    scores = np.stack([r.scores[class_id] for r in results if r.scores is not None])
                    tensors.append(Tensor(PROBABILITY, "FP32", list(scores.shape), scores.astype(np.float32)))
            return tensors

        return feeds, finish
