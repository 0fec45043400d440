"""A Paddle Serving 0.9 client script as teams wrote them for a PaddleSeg portrait model: several servers, an
A/B-style variant tag per answer, the fetch name from the original export. It runs against SegServing with one
line changed: `from paddle_serving_client import Client` -> `from client_sdk import Client` (docs/migrating.md).

    python paddle_serving_client.py serving_client/serving_client_conf.prototxt 10.0.0.1:9393,10.0.0.2:9393 [IMG...]
"""

import sys
from collections import Counter

import numpy as np
from paddle_serving_client import Client
from PIL import Image


def preprocess(image):
    """HWC RGB uint8 -> CHW float32 in [0, 1] at the model's 256 x 256, as the bundled portrait model takes it."""
    resized = np.asarray(Image.fromarray(image).convert("RGB").resize((256, 256)), dtype="float32") / 255.0
    return resized.transpose(2, 0, 1)


def images(paths):
    if paths:
        for path in paths:
            yield path, np.asarray(Image.open(path))
        return
    gradient = np.linspace(0, 255, 320, dtype="uint8")  # no photos given: eight synthetic ones
    for i in range(8):
        yield f"synthetic-{i}", np.dstack([np.tile(gradient, (240, 1))] * 3) // (i + 1)


client = Client()
client.load_client_config(sys.argv[1])
client.connect(sys.argv[2].split(","))

served = Counter()
for name, image in images(sys.argv[3:]):
    fetch_map, tag = client.predict(
        feed={"image": preprocess(image)}, fetch=["save_infer_model/scale_0.tmp_1"], batch=False, need_variant_tag=True
    )
    scores = fetch_map["save_infer_model/scale_0.tmp_1"]  # 1 x 1 x 256 x 256 person probability
    mask = scores[0, 0] > 0.5
    served[tag] += 1
    print(f"{name}: {mask.mean():.1%} foreground (served by {tag})")
print(f"served {sum(served.values())} images: {dict(served)}")
