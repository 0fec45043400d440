"""PaddleSeg's validation metrics in numpy: per-class areas summed over a dataset, then mIoU, Acc, Kappa, Dice.

Conventions (PaddleSeg v2.9+ `paddleseg/utils/metrics.py`): pixels whose label is `ignore_index` are left out of
the prediction areas; IoU of a class with an empty union is 1; precision, recall and Dice are 0 when their
denominator is 0; Acc = sum(I) / sum(P); Kappa uses N = sum(L). Where PaddleSeg would divide 0 by 0 for a whole
dataset (no labelled pixel at all, or prediction and label both one single class) Acc and Kappa are defined here:
Acc 0 with no pixel; Kappa 1 when every pixel agrees, else 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Areas = tuple[np.ndarray, np.ndarray, np.ndarray]


def _class_counts(values: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixels per class id in [0, num_classes); other values are not counted."""
    values = values.ravel().astype(np.int64, copy=False)
    values = values[(values >= 0) & (values < num_classes)]
    return np.bincount(values, minlength=num_classes).astype(np.int64)


def calculate_area(pred: np.ndarray, label: np.ndarray, num_classes: int, ignore_index: int = 255) -> Areas:
    """(intersect, pred, label) pixel counts per class for one image; pred and label are H x W class ids."""
    pred, label = np.asarray(pred), np.asarray(label)
    if pred.shape != label.shape:
        raise ValueError(f"prediction {list(pred.shape)} and label {list(label.shape)} differ in shape")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    mask = label != ignore_index
    pred_kept = pred[mask]
    pred_area = _class_counts(pred_kept, num_classes)
    label_area = _class_counts(label, num_classes)
    intersect_area = _class_counts(pred_kept[pred_kept == label[mask]], num_classes)
    return intersect_area, pred_area, label_area


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    """num / den elementwise as float64, `empty` where den == 0."""
    num, den = num.astype(np.float64), den.astype(np.float64)
    out = np.full(num.shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def class_iou(intersect: np.ndarray, pred: np.ndarray, label: np.ndarray) -> np.ndarray:
    """I / (P + L - I) per class; 1 for a class absent from both prediction and label."""
    return _ratio(intersect, pred + label - intersect, 1.0)


def class_dice(intersect: np.ndarray, pred: np.ndarray, label: np.ndarray) -> np.ndarray:
    """2I / (P + L) per class; 0 when P + L == 0."""
    return _ratio(2 * intersect, pred + label, 0.0)


def accuracy(intersect: np.ndarray, pred: np.ndarray) -> float:
    """Pixel accuracy over non-ignored pixels: sum(I) / sum(P)."""
    total = int(pred.sum())
    return float(intersect.sum()) / total if total else 0.0


def kappa(intersect: np.ndarray, pred: np.ndarray, label: np.ndarray) -> float:
    """Cohen's kappa: po = sum(I)/N, pe = sum(P*L)/N^2, (po - pe) / (1 - pe), with N = sum(L)."""
    total = float(label.sum())
    if total == 0:
        return 0.0
    po = float(intersect.sum()) / total
    pe = float((pred.astype(np.float64) * label.astype(np.float64)).sum()) / (total * total)
    if pe == 1.0:
        return 1.0 if po == 1.0 else 0.0
    return (po - pe) / (1.0 - pe)


@dataclass(frozen=True)
class SegMetrics:
    """Dataset-level metrics; class_* lists are indexed by class id."""

    miou: float
    acc: float
    kappa: float
    mdice: float
    class_iou: list[float]
    class_precision: list[float]
    class_recall: list[float]
    class_dice: list[float]

    def to_dict(self) -> dict[str, float | list[float]]:
        return {
            "mIoU": self.miou,
            "Acc": self.acc,
            "Kappa": self.kappa,
            "Dice": self.mdice,
            "class_iou": self.class_iou,
            "class_precision": self.class_precision,
            "class_recall": self.class_recall,
            "class_dice": self.class_dice,
        }

    def summary(self, num_images: int) -> str:
        """PaddleSeg's `[EVAL]` log lines."""

        def fmt(values: list[float]) -> str:
            return "[" + " ".join(f"{v:.4f}" for v in values) + "]"

        return "\n".join(
            [
                f"[EVAL] #Images: {num_images} mIoU: {self.miou:.4f} Acc: {self.acc:.4f} "
                f"Kappa: {self.kappa:.4f} Dice: {self.mdice:.4f}",
                f"[EVAL] Class IoU: \n{fmt(self.class_iou)}",
                f"[EVAL] Class Precision: \n{fmt(self.class_precision)}",
                f"[EVAL] Class Recall: \n{fmt(self.class_recall)}",
            ]
        )


def compute_metrics(intersect: np.ndarray, pred: np.ndarray, label: np.ndarray) -> SegMetrics:
    """Every metric from per-class areas summed over a dataset."""
    intersect, pred, label = (np.asarray(a, dtype=np.int64) for a in (intersect, pred, label))
    iou = class_iou(intersect, pred, label)
    dice = class_dice(intersect, pred, label)
    return SegMetrics(
        miou=float(iou.mean()),
        acc=accuracy(intersect, pred),
        kappa=kappa(intersect, pred, label),
        mdice=float(dice.mean()),
        class_iou=iou.tolist(),
        class_precision=_ratio(intersect, pred, 0.0).tolist(),
        class_recall=_ratio(intersect, label, 0.0).tolist(),
        class_dice=dice.tolist(),
    )


@dataclass
class AreaAccumulator:
    """Sums per-class intersect / pred / label areas over images (PaddleSeg sums areas, not per-image metrics)."""

    num_classes: int
    ignore_index: int = 255
    images: int = 0
    intersect: np.ndarray = field(init=False)
    pred: np.ndarray = field(init=False)
    label: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        self.intersect, self.pred, self.label = (np.zeros(self.num_classes, np.int64) for _ in range(3))

    def add(self, pred: np.ndarray, label: np.ndarray) -> None:
        """Add one image's prediction and label (same H x W)."""
        intersect, pred_area, label_area = calculate_area(pred, label, self.num_classes, self.ignore_index)
        self.intersect += intersect
        self.pred += pred_area
        self.label += label_area
        self.images += 1

    def metrics(self) -> SegMetrics:
        return compute_metrics(self.intersect, self.pred, self.label)

    def areas(self) -> dict[str, list[int]]:
        return {"intersect": self.intersect.tolist(), "pred": self.pred.tolist(), "label": self.label.tolist()}
