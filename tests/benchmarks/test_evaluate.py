"""benchmarks.metrics against hand-computed cases, and `python -m benchmarks.evaluate` end to end against a real
server (labels made from the model's own predictions, some perturbed) and in engine-parity mode."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import child_env
from PIL import Image
from servers import ServerProcess, start_server

from benchmarks.metrics import AreaAccumulator, calculate_area, compute_metrics
from client_sdk import SegClient

ROOT = Path(__file__).resolve().parents[2]

# --- metrics: hand-computed ------------------------------------------------------------------------------------

PRED = np.array([[0, 1, 1], [2, 2, 0]])
LABEL = np.array([[0, 1, 255], [2, 0, 0]])  # (0, 2) ignored: its prediction 1 is not counted


def test_areas_leave_out_ignored_pixels() -> None:
    intersect, pred, label = calculate_area(PRED, LABEL, 3)
    assert intersect.tolist() == [2, 1, 1]
    assert pred.tolist() == [2, 1, 2]
    assert label.tolist() == [3, 1, 1]


def test_metrics_by_hand() -> None:
    m = compute_metrics(*calculate_area(PRED, LABEL, 3))
    assert m.class_iou == pytest.approx([2 / 3, 1.0, 1 / 2])
    assert m.miou == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert m.acc == pytest.approx(4 / 5)
    assert m.class_precision == pytest.approx([1.0, 1.0, 0.5])
    assert m.class_recall == pytest.approx([2 / 3, 1.0, 1.0])
    assert m.class_dice == pytest.approx([4 / 5, 1.0, 2 / 3])
    assert m.mdice == pytest.approx((4 / 5 + 1 + 2 / 3) / 3)
    # po = 4/5, pe = (2*3 + 1*1 + 2*1) / 5^2 = 9/25, kappa = (0.8 - 0.36) / (1 - 0.36)
    assert m.kappa == pytest.approx(0.6875)


def test_absent_class_has_iou_one_and_zero_dice_precision_recall() -> None:
    m = compute_metrics(*calculate_area(PRED, LABEL, 4))
    assert m.class_iou[3] == 1.0
    assert (m.class_precision[3], m.class_recall[3], m.class_dice[3]) == (0.0, 0.0, 0.0)
    assert m.miou == pytest.approx((2 / 3 + 1 + 1 / 2 + 1) / 4)
    assert m.mdice == pytest.approx((4 / 5 + 1 + 2 / 3 + 0) / 4)


def test_kappa_arithmetic() -> None:
    # po = 70/100, pe = (50*60 + 50*40) / 100^2 = 0.5, kappa = (0.7 - 0.5) / 0.5
    m = compute_metrics([40, 30], [50, 50], [60, 40])
    assert m.kappa == pytest.approx(0.4)
    assert m.acc == pytest.approx(0.7)
    assert compute_metrics([10, 0], [10, 0], [10, 0]).kappa == 1.0  # one class, all agree: pe == 1


def test_areas_are_summed_over_images_not_averaged() -> None:
    a_pred, a_label = np.zeros((2, 2), int), np.zeros((2, 2), int)
    b_pred, b_label = np.array([[1, 1, 1, 1]]), np.array([[1, 0, 0, 255]])
    acc = AreaAccumulator(2)
    acc.add(a_pred, a_label)
    acc.add(b_pred, b_label)
    assert acc.images == 2
    assert acc.areas() == {"intersect": [4, 1], "pred": [4, 3], "label": [6, 1]}
    assert acc.metrics().miou == pytest.approx((4 / 6 + 1 / 3) / 2)


def test_matches_per_class_loop_on_random_arrays() -> None:
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 5, (37, 41))
    label = rng.integers(0, 5, (37, 41))
    label[rng.random(label.shape) < 0.2] = 255
    mask = label != 255
    expected = [
        [int(((pred == c) & mask & (label == c)).sum()) for c in range(5)],
        [int(((pred == c) & mask).sum()) for c in range(5)],
        [int((label == c).sum()) for c in range(5)],
    ]
    assert [a.tolist() for a in calculate_area(pred, label, 5)] == expected


def test_edge_cases() -> None:
    m = compute_metrics(*calculate_area(np.ones((2, 2), int), np.full((2, 2), 255), 2))
    assert (m.miou, m.acc, m.kappa) == (1.0, 0.0, 0.0)  # nothing labelled
    assert calculate_area(np.array([[7, 0]]), np.array([[7, 0]]), 2)[0].tolist() == [1, 0]  # ids >= C not counted
    with pytest.raises(ValueError, match="shape"):
        calculate_area(np.zeros((2, 3)), np.zeros((3, 2)), 2)


# --- the CLI --------------------------------------------------------------------------------------------------


def evaluate(args: str) -> subprocess.CompletedProcess[str]:
    """`python -m benchmarks.evaluate ARGS --no-progress`; ARGS split on whitespace (test paths have no spaces)."""
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.evaluate", "--no-progress", *args.split()],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bad_list_line_exits_2(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    Image.new("L", (4, 4)).save(tmp_path / "a_label.png")
    (tmp_path / "val.txt").write_text("a.png a_label.png\nb.png\n")
    proc = evaluate(f"--server 127.0.0.1:1 --model m --dataset_root {tmp_path} --val_path {tmp_path / 'val.txt'}")
    assert proc.returncode == 2, proc.stderr
    assert "val.txt:2: expected 'image_path label_path', got 1 field(s)" in proc.stderr
    assert "Traceback" not in proc.stderr

    (tmp_path / "val.txt").write_text("a.png a_label.png\na.png missing.png\n")
    proc = evaluate(f"--server 127.0.0.1:1 --model m --dataset_root {tmp_path} --val_path {tmp_path / 'val.txt'}")
    assert proc.returncode == 2
    assert "val.txt:2: label file" in proc.stderr and "missing.png does not exist" in proc.stderr


SIZES = [(40, 30), (64, 48), (50, 70), (33, 21), (80, 60), (45, 45)]  # (w, h)


@dataclass
class LabelledSet:
    root: Path
    preds: dict[str, list[np.ndarray]]  # model -> the server's label maps, one per image


def make_image(w: int, h: int, seed: int) -> Image.Image:
    """Smooth colour blobs, so the tiny models predict several classes."""
    coarse = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((w, h), Image.BILINEAR)


def perturb(pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Another class in the top third, a column of ignore pixels on the right."""
    label = pred.astype(np.uint8)
    third = label.shape[0] // 3
    label[:third] = (label[:third] + 1) % num_classes
    label[:, -3:] = 255
    return label


@pytest.fixture(scope="module")
def server(converted: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("eval-server")
    with start_server(tmp, "--thread", "1", "--model", converted("pir_interp"), converted("pir_softmax")) as srv:
        yield srv


@pytest.fixture(scope="module")
def dataset(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> LabelledSet:
    """6 images; per model, labels = its predictions for images 0-2 and perturbed predictions for 3-5; list
    files exact_<model>.txt (0-2), all_<model>.txt (0-5 plus one undecodable image)."""
    root = tmp_path_factory.mktemp("evalset")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    names = [f"images/{i}.png" for i in range(len(SIZES))]
    for i, (w, h) in enumerate(SIZES):
        make_image(w, h, i).save(root / names[i])
    (root / "images" / "broken.png").write_bytes(b"not an image")
    Image.new("L", (8, 8)).save(root / "labels" / "broken.png")
    preds: dict[str, list[np.ndarray]] = {}
    for model, classes in (("pir_interp", 3), ("pir_softmax", 2)):
        with SegClient(server.address, model=model) as client:
            preds[model] = [client.segment(root / n).label_map for n in names]
        lines = []
        for i, pred in enumerate(preds[model]):
            assert pred.shape == (SIZES[i][1], SIZES[i][0])
            label = pred.astype(np.uint8) if i < 3 else perturb(pred, classes)
            Image.fromarray(label).save(root / "labels" / f"{model}_{i}.png")
            lines.append(f"{names[i]} labels/{model}_{i}.png")
        (root / f"exact_{model}.txt").write_text("\n".join(lines[:3]) + "\n")
        (root / f"all_{model}.txt").write_text(
            "\n".join([*lines[:4], "images/broken.png labels/broken.png", *lines[4:]]) + "\n"
        )
    return LabelledSet(root, preds)


def test_own_predictions_score_one(server: ServerProcess, dataset: LabelledSet, tmp_path: Path) -> None:
    out = tmp_path / "exact.json"
    proc = evaluate(
        f"--server {server.address} --model pir_interp --dataset_root {dataset.root} "
        f"--val_path {dataset.root / 'exact_pir_interp.txt'} --num_classes 3 --out {out}"
    )
    assert proc.returncode == 0, proc.stderr
    assert "[EVAL] #Images: 3 mIoU: 1.0000 Acc: 1.0000 Kappa: 1.0000" in proc.stdout
    assert "[EVAL] Class IoU: \n[1.0000 1.0000 1.0000]" in proc.stdout
    ev = json.loads(out.read_text())["evaluation"]
    assert (ev["images"], ev["failed"], ev["num_classes"]) == (3, 0, 3)
    assert (ev["mIoU"], ev["Acc"], ev["Kappa"]) == (1.0, 1.0, 1.0)
    assert ev["class_iou"] == [1.0, 1.0, 1.0]


def test_perturbed_labels_match_metrics_module(server: ServerProcess, dataset: LabelledSet, tmp_path: Path) -> None:
    expected = AreaAccumulator(3)
    for i, pred in enumerate(dataset.preds["pir_interp"]):
        expected.add(pred, pred if i < 3 else perturb(pred, 3))
    want = expected.metrics()
    assert want.miou < 1.0
    out = tmp_path / "all.json"
    proc = evaluate(
        f"--server {server.address} --model pir_interp --dataset_root {dataset.root} "
        f"--val_path {dataset.root / 'all_pir_interp.txt'} --num_classes 3 --protocol grpc --concurrency 3 --out {out}"
    )
    assert proc.returncode == 0, proc.stderr
    ev = json.loads(out.read_text())["evaluation"]
    assert (ev["images"], ev["failed"]) == (6, 1)
    assert ev["failures"][0]["line"] == 5 and ev["failures"][0]["image"].endswith("broken.png")
    assert "1 request(s) failed" in proc.stderr
    assert ev["areas"] == expected.areas()
    assert ev["mIoU"] == pytest.approx(want.miou, abs=1e-12)
    for key, value in want.to_dict().items():
        assert ev[key] == pytest.approx(value, abs=1e-12), key
    assert f"[EVAL] #Images: 6 mIoU: {want.miou:.4f} Acc: {want.acc:.4f}" in proc.stdout


def test_server_and_engine_parity(
    server: ServerProcess, dataset: LabelledSet, converted: Callable[[str], Path], tmp_path: Path
) -> None:
    """pir_softmax: the server's class count is used; paddle and onnxruntime in-process agree on every pixel and
    score exactly as the server; fp16 is run where a GPU allows, else reported as skipped."""
    out = tmp_path / "parity.json"
    proc = evaluate(
        f"--server {server.address} --model pir_softmax --model_dir {converted('pir_softmax')} "
        f"--dataset_root {dataset.root} --val_path {dataset.root / 'all_pir_softmax.txt'} "
        f"--parity paddle,onnxruntime,onnxruntime-fp16 --out {out}"
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    ev, parity = report["evaluation"], report["parity"]
    assert (ev["num_classes"], ev["class_names"], ev["images"]) == (2, ["background", "person"], 6)
    assert ev["mIoU"] < 1.0
    assert (parity["reference"], parity["images"], parity["failed"]) == ("paddle", 6, 1)
    engines = parity["engines"]
    assert engines["paddle"]["status"] == engines["onnxruntime"]["status"] == "ok"
    assert engines["paddle"]["mIoU"] == engines["onnxruntime"]["mIoU"] == pytest.approx(ev["mIoU"], abs=1e-12)
    pair = parity["pairs"][0]
    assert (pair["engine"], pair["label_agreement"], pair["miou_delta"]) == ("onnxruntime", 1.0, 0.0)
    fp16 = engines["onnxruntime-fp16"]
    assert fp16["status"] in ("ok", "skipped")
    if fp16["status"] == "skipped":
        assert "fp16" in fp16["reason"]
        assert "[PARITY] onnxruntime-fp16: skipped (" in proc.stdout
    assert "[PARITY] onnxruntime vs paddle: label agreement 1.000000 mIoU delta +0.000000" in proc.stdout


def test_label_of_another_size_exits_2(server: ServerProcess, dataset: LabelledSet, tmp_path: Path) -> None:
    (tmp_path / "val.txt").write_text(f"{dataset.root / 'images/0.png'} {dataset.root / 'labels/broken.png'}\n")
    proc = evaluate(
        f"--server {server.address} --model pir_interp --num_classes 3 --dataset_root {dataset.root} "
        f"--val_path {tmp_path / 'val.txt'} --out {tmp_path / 'r.json'}"
    )
    assert proc.returncode == 2
    assert "broken.png is 8x8 but image" in proc.stderr and "0.png is 40x30" in proc.stderr


def test_parity_entries() -> None:
    from benchmarks.parity import parse_engines

    got = [(c.label, c.engine, c.precision) for c in parse_engines("paddle, onnxruntime,fp16,paddle-fp16")]
    assert got == [("paddle", "paddle", "fp32"), ("onnxruntime", "onnxruntime", "fp32"), ("fp16", "auto", "fp16"),
                   ("paddle-fp16", "paddle", "fp16")]  # fmt: skip
    for bad in ("tensorrt", "paddle-int8", "paddle,paddle", ""):
        with pytest.raises(ValueError):
            parse_engines(bad)
