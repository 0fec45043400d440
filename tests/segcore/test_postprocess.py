"""segcore.postprocess: reverse transform and output ops on tiny hand-checked outputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from segcore.modelconfig import Postprocess
from segcore.postprocess import InvalidOutput, SegmentationResult, postprocess, reverse_transform


def _spec(op: str) -> Postprocess:
    return Postprocess(output_name="out", output_op=op)


# --- reverse_transform ------------------------------------------------------------------------------------


def test_reverse_transform_resize_nearest_keeps_label_values():
    labels = np.array([[0, 5]], dtype=np.uint8)
    # 1x2 back to 2x4 (h x w), NEAREST: src x = floor(dst * 2/4) -> 0,0,1,1; both rows copy row 0.
    out = reverse_transform(labels, [("resize", (2, 4))], cv2.INTER_NEAREST)
    assert out.tolist() == [[0, 0, 5, 5], [0, 0, 5, 5]]
    assert set(np.unique(out)) <= {0, 5}


def test_reverse_transform_resize_bilinear_on_probabilities():
    probs = np.array([[0.0, 1.0]], dtype=np.float32)
    # half-pixel bilinear 2 -> 4: src x = -0.25, 0.25, 0.75, 1.25 -> 0, 0.25, 0.75, 1.
    out = reverse_transform(probs, [("resize", (1, 4))], cv2.INTER_LINEAR)
    np.testing.assert_allclose(out, [[0.0, 0.25, 0.75, 1.0]], atol=1e-6)


def test_reverse_transform_crops_padding_before_resizing_back():
    # Original 2x4 (h x w) -> resized to 1x2 -> padded to 2x2. The network output is 2x2;
    # row 1 is padding (label 9). Reverse: crop [:1, :2] -> [[1, 2]], then NEAREST to 2x4.
    trans_info = [("resize", (2, 4)), ("padding", (1, 2))]
    net = np.array([[1, 2], [9, 9]], dtype=np.uint8)
    out = reverse_transform(net, trans_info, cv2.INTER_NEAREST)
    assert out.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]


def test_reverse_transform_padding_then_resize_order():
    # Original 1x1 -> padded to 1x2 (w grows) -> resized to 2x4. Reverse: resize 2x4 -> 1x2, then crop to 1x1.
    trans_info = [("padding", (1, 1)), ("resize", (1, 2))]
    net = np.array([[3, 3, 7, 7], [3, 3, 7, 7]], dtype=np.uint8)
    out = reverse_transform(net, trans_info, cv2.INTER_NEAREST)
    assert out.tolist() == [[3]]


def test_reverse_transform_empty_info_is_identity():
    a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert reverse_transform(a, [], cv2.INTER_NEAREST) is a


# --- argmax -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("batchless_shape", [(1, 1, 2), (1, 2)])
def test_argmax_output_restored_with_nearest(dtype, batchless_shape):
    out = np.array([0, 3], dtype=dtype).reshape(batchless_shape)
    result = postprocess(out, _spec("argmax"), [("resize", (2, 4))], want_scores=True)
    assert isinstance(result, SegmentationResult)
    # 1x2 -> 2x4 nearest: [0,0,3,3] on both rows.
    assert result.label_map.tolist() == [[0, 0, 3, 3], [0, 0, 3, 3]]
    assert result.label_map.dtype == np.uint8  # < 256 classes
    assert result.scores is None  # argmax models have no scores


def test_argmax_large_label_ids_stay_int32():
    out = np.array([[0, 300]], dtype=np.int64)
    # 300 does not fit uint8 -> int32; nearest to 1x4 -> [0,0,300,300].
    result = postprocess(out, _spec("argmax"), [("resize", (1, 4))], want_scores=False)
    assert result.label_map.dtype == np.int32
    assert result.label_map.tolist() == [[0, 0, 300, 300]]


@pytest.mark.parametrize("shape", [(2, 1, 2), (2,), (1, 1, 1, 2)])
def test_argmax_wrong_rank_is_invalid_output(shape):
    with pytest.raises(InvalidOutput, match="argmax output must be H x W"):
        postprocess(np.zeros(shape, dtype=np.int32), _spec("argmax"), [], want_scores=False)


# --- softmax / none / sigmoid -----------------------------------------------------------------------------


def test_softmax_label_is_argmax_and_scores_pass_through_bilinear():
    # C=2, 1x2 probabilities: class1 = [0, 1], class0 = [1, 0]; restored to 1x4 bilinear:
    # class1 -> [0, .25, .75, 1]; class0 -> [1, .75, .25, 0]; argmax -> [0, 0, 1, 1].
    out = np.array([[[1.0, 0.0]], [[0.0, 1.0]]], dtype=np.float32)
    result = postprocess(out, _spec("softmax"), [("resize", (1, 4))], want_scores=True)
    assert result.label_map.tolist() == [[0, 0, 1, 1]]
    assert result.label_map.dtype == np.uint8
    assert result.scores is not None
    assert result.scores.shape == (2, 1, 4)  # C x H x W at the original size
    np.testing.assert_allclose(result.scores[0], [[1.0, 0.75, 0.25, 0.0]], atol=1e-6)
    np.testing.assert_allclose(result.scores[1], [[0.0, 0.25, 0.75, 1.0]], atol=1e-6)


def test_softmax_scores_not_renormalised():
    # Passthrough: values that do not sum to 1 stay as they are (no second softmax).
    out = np.array([[[0.2]], [[0.3]], [[0.1]]], dtype=np.float32)
    result = postprocess(out, _spec("softmax"), [], want_scores=True)
    assert result.label_map.tolist() == [[1]]
    np.testing.assert_allclose(result.scores[:, 0, 0], [0.2, 0.3, 0.1], atol=1e-7)


def test_softmax_without_scores():
    out = np.array([[[0.9, 0.1]], [[0.1, 0.9]]], dtype=np.float32)
    result = postprocess(out, _spec("softmax"), [], want_scores=False)
    assert result.label_map.tolist() == [[0, 1]]
    assert result.scores is None


def test_none_op_scores_are_softmax_of_logits():
    # logits (0, ln 3): softmax = (1/(1+3), 3/(1+3)) = (0.25, 0.75); logits (ln 4, 0): (0.8, 0.2).
    logits = np.array([[[0.0, np.log(4.0)]], [[np.log(3.0), 0.0]]], dtype=np.float32)
    result = postprocess(logits, _spec("none"), [], want_scores=True)
    assert result.label_map.tolist() == [[1, 0]]
    np.testing.assert_allclose(result.scores[:, 0, 0], [0.25, 0.75], atol=1e-6)
    np.testing.assert_allclose(result.scores[:, 0, 1], [0.8, 0.2], atol=1e-6)
    np.testing.assert_allclose(result.scores.sum(axis=0), np.ones((1, 2)), atol=1e-6)


def test_sigmoid_single_channel():
    # p = [0.2, 0.5, 0.9] -> label p >= 0.5 -> [0, 1, 1]; scores = [1-p, p].
    p = np.array([[[0.2, 0.5, 0.9]]], dtype=np.float32)
    result = postprocess(p, _spec("sigmoid"), [], want_scores=True)
    assert result.label_map.tolist() == [[0, 1, 1]]
    assert result.label_map.dtype == np.uint8
    assert result.scores.shape == (2, 1, 3)
    np.testing.assert_allclose(result.scores[0], [[0.8, 0.5, 0.1]], atol=1e-6)
    np.testing.assert_allclose(result.scores[1], [[0.2, 0.5, 0.9]], atol=1e-6)


def test_sigmoid_restored_to_original_size():
    # p 1x2 = [0, 1] -> bilinear to 1x4 = [0, .25, .75, 1] -> labels [0, 0, 1, 1].
    p = np.array([[[0.0, 1.0]]], dtype=np.float32)
    result = postprocess(p, _spec("sigmoid"), [("resize", (1, 4))], want_scores=True)
    assert result.label_map.tolist() == [[0, 0, 1, 1]]
    np.testing.assert_allclose(result.scores[1], [[0.0, 0.25, 0.75, 1.0]], atol=1e-6)


def test_none_op_single_channel_applies_sigmoid():
    # logit 0 -> sigmoid 0.5 -> label 1; logit -ln 3 -> 1/(1+3) = 0.25 -> label 0.
    logits = np.array([[[0.0, -np.log(3.0)]]], dtype=np.float32)
    result = postprocess(logits, _spec("none"), [], want_scores=True)
    assert result.label_map.tolist() == [[1, 0]]
    np.testing.assert_allclose(result.scores[1], [[0.5, 0.25]], atol=1e-6)


@pytest.mark.parametrize("op", ["softmax", "none", "sigmoid"])
@pytest.mark.parametrize("shape", [(2, 2), (1, 2, 2, 2)])
def test_probability_ops_wrong_rank_is_invalid_output(op, shape):
    with pytest.raises(InvalidOutput, match="C x H x W"):
        postprocess(np.zeros(shape, dtype=np.float32), _spec(op), [], want_scores=True)
    assert issubclass(InvalidOutput, ValueError)


def test_softmax_through_resize_and_padding_chain():
    # Original 2x4 -> resize 1x2 -> pad to 2x2. Padded row holds class 1 with certainty;
    # after cropping it must not appear. Kept row: class 0 = [1, 0], class 1 = [0, 1].
    trans_info = [("resize", (2, 4)), ("padding", (1, 2))]
    out = np.array([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]]], dtype=np.float32)
    result = postprocess(out, _spec("softmax"), trans_info, want_scores=True)
    assert result.label_map.shape == (2, 4)
    assert result.label_map.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1]]
    np.testing.assert_allclose(result.scores[1], [[0.0, 0.25, 0.75, 1.0]] * 2, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64])
def test_classes_present_lists_each_id_once_ascending(dtype):
    labels = np.zeros((37, 53), dtype=dtype)
    labels[3:9, 4:7] = 7
    labels[-1, -1] = 2
    labels[20, 0] = 255 if dtype == np.uint8 else 300
    top = 255 if dtype == np.uint8 else 300
    assert SegmentationResult(labels).classes_present() == [0, 2, 7, top]


def test_classes_present_of_a_strided_view_and_edge_cases():
    labels = np.arange(24, dtype=np.uint8).reshape(4, 6)[:, ::2]  # not contiguous
    assert SegmentationResult(labels).classes_present() == sorted(set(labels.ravel().tolist()))
    assert SegmentationResult(np.zeros((0, 4), np.uint8)).classes_present() == []
    assert SegmentationResult(np.array([[-1, 3]], np.int32)).classes_present() == [-1, 3]
