"""PaddleSeg's own inference pipeline: the reference served labels are held to.

What PaddleSeg 2.8's `deploy/python/infer.py` does on the CPU, with PaddleSeg's own code where it is a library:
`paddleseg.deploy.infer.DeployConfig` reads deploy.yaml and builds `paddleseg.transforms.Compose` from it, which
reads the image file (`cv2.imread(..., IMREAD_COLOR).astype("float32")`), converts BGR to RGB and runs the
transforms; Paddle Inference runs the original export with infer.py's predictor settings. infer.py stops at the
network's resolution; the result is brought back to the image as PaddleSeg's `tools/predict.py` and `val.py` do
(`paddleseg.core.infer.reverse_transform`): nearest for an exported argmax, bilinear on the class maps of a
softmax or logits export, then argmax.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml


class PaddleSegReference:
    """reference(image_path) -> H x W int32 labels at the image's size, the way PaddleSeg computes them."""

    def __init__(self, export_dir: Path, cpu_threads: int = 1) -> None:
        os.environ.setdefault("PADDLESEG_EXPORT_STAGE", "True")
        from paddle import inference
        from paddleseg.deploy.infer import DeployConfig

        deploy_yaml = Path(export_dir) / "deploy.yaml"
        # DeployConfig pops each transform's "type" as it builds them; keep the list to build fresh ones per image.
        self._transform_specs = yaml.safe_load(deploy_yaml.read_text(encoding="utf-8"))["Deploy"]["transforms"]
        self.config = DeployConfig(str(deploy_yaml))
        model = Path(self.config.model)
        if not model.is_file() and model.with_suffix(".json").is_file():
            model = model.with_suffix(".json")  # Paddle 3 saves model.json where deploy.yaml says model.pdmodel
        predictor_config = inference.Config(str(model), self.config.params)
        predictor_config.disable_glog_info()
        if model.suffix != ".json":  # infer.py's call; Paddle 3 cannot run it on PIR programs
            predictor_config.enable_memory_optim()
        predictor_config.switch_ir_optim(True)
        predictor_config.disable_gpu()
        predictor_config.set_cpu_math_library_num_threads(cpu_threads)
        self._predictor = inference.create_predictor(predictor_config)

    def network_output(self, image_path: Path) -> tuple[np.ndarray, list[Any]]:
        """The export's raw output for one image (batch of 1) and PaddleSeg's trans_info."""
        # Fresh transforms per image: PaddleSeg's ResizeByShort lowers its short_size for good after one large
        # image, so a reused Compose answers differently depending on earlier images (docs/paddleseg-fidelity.md).
        transforms = self.config.load_transforms(copy.deepcopy(self._transform_specs))
        data = transforms({"img": str(image_path)})
        predictor = self._predictor
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        batch = data["img"][np.newaxis]
        handle.reshape(batch.shape)
        handle.copy_from_cpu(batch)
        predictor.run()
        output = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
        return output, data["trans_info"]

    def __call__(self, image_path: Path) -> np.ndarray:
        import paddle
        from paddleseg.core.infer import reverse_transform

        output, trans_info = self.network_output(image_path)
        if output.ndim == 3:  # exported argmax: N x H x W labels
            labels = paddle.to_tensor(output[:, np.newaxis].astype(np.int32))
            restored = reverse_transform(labels, trans_info, mode="nearest")
            return np.asarray(restored.numpy()[0, 0], dtype=np.int32)
        maps = reverse_transform(paddle.to_tensor(output.astype(np.float32)), trans_info, mode="bilinear")
        return np.asarray(maps.numpy()[0].argmax(axis=0), dtype=np.int32)
