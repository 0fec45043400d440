"""`client_sdk.batch` and `client_sdk.progress`: targets that never collide, whole-or-nothing writes, failures in
plain words, progress lines for logs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from client_sdk.batch import Item, plan, reason, render, write_atomic
from client_sdk.errors import InvalidInput
from client_sdk.progress import Progress
from client_sdk.result import SegResult


def touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")


def targets(items: list[Item], out: Path) -> list[str]:
    return sorted(str(i.target.relative_to(out)) for i in items)


def test_one_folder_is_mirrored_and_same_stems_stay_apart(tmp_path: Path) -> None:
    touch(tmp_path / "in", "a.jpg", "a.png", "A.JPEG", "sub/a.jpg", "notes.txt", "sub/deep/b.webp")
    out = tmp_path / "out"
    assert targets(plan([tmp_path / "in"], out, ".png"), out) == ["A.JPEG.png", "a.jpg.png", "a.png.png"]
    assert targets(plan([tmp_path / "in"], out, ".png", recursive=True), out) == [
        "A.JPEG.png", "a.jpg.png", "a.png.png", "sub/a.jpg.png", "sub/deep/b.webp.png"]  # fmt: skip


def test_several_inputs_keep_their_paths_below_the_folder_they_share(tmp_path: Path) -> None:
    touch(tmp_path, "x/a.jpg", "y/a.jpg", "y/z/c.png", "top.bmp")
    out = tmp_path / "out"
    items = plan([tmp_path / "x" / "a.jpg", tmp_path / "y", tmp_path / "top.bmp", tmp_path / "y" / "a.jpg"], out,
                 ".jpg", recursive=True)  # fmt: skip
    assert targets(items, out) == ["top.bmp.jpg", "x/a.jpg.jpg", "y/a.jpg.jpg", "y/z/c.png.jpg"]  # y/a.jpg once
    assert len({i.target for i in items}) == len(items)


def test_a_file_named_directly_is_taken_whatever_its_suffix(tmp_path: Path) -> None:
    touch(tmp_path, "scan.tiff")
    assert targets(plan([tmp_path / "scan.tiff"], tmp_path / "o", ".png"), tmp_path / "o") == ["scan.tiff.png"]
    with pytest.raises(FileNotFoundError, match=r"missing\.jpg: no such file or folder"):
        plan([tmp_path / "missing.jpg"], tmp_path / "o", ".png")


def test_write_atomic_leaves_the_whole_file_or_none(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "r.png"
    write_atomic(target, b"first")
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second" and sorted(p.name for p in target.parent.iterdir()) == ["r.png"]
    with pytest.raises(TypeError):  # the write fails halfway: the old file stays, no temporary is left
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"second" and sorted(p.name for p in target.parent.iterdir()) == ["r.png"]


def _png_mode_values(data: bytes) -> tuple[str, set[int]]:
    with Image.open(io.BytesIO(data)) as image:
        return image.mode, set(np.unique(np.array(image)).tolist())


def test_masks_are_visible_and_many_classes_keep_their_ids() -> None:
    two = SegResult(np.array([[0, 1], [1, 0]]), num_classes=2)
    assert _png_mode_values(render(two, "mask", Path("unused"))) == ("L", {0, 255})
    many = SegResult(np.array([[0, 3], [7, 18]]), num_classes=19)
    data = render(many, "mask", Path("unused"))
    mode, values = _png_mode_values(data)
    with Image.open(io.BytesIO(data)) as image:
        colours = image.getpalette()
    assert mode == "P" and values == {0, 3, 7, 18} and colours is not None and colours[3:6] != [0, 0, 0]
    with pytest.raises(ValueError, match="no probability map"):
        render(two, "probability", Path("unused"))


def test_reasons_are_plain_words() -> None:
    with pytest.raises(Exception) as pil:  # PIL's own error names a BytesIO object
        Image.open(io.BytesIO(b"garbage"))
    assert "BytesIO" in str(pil.value)
    assert reason(pil.value).startswith("not an image") and "BytesIO" not in reason(pil.value)
    wrapped = InvalidInput("cannot read image x.jpg: cannot identify image file <_io.BytesIO object at 0x7f>")
    assert reason(wrapped).startswith("not an image")
    assert reason(InvalidInput("no face found in the photo")) == "no face found in the photo"
    assert reason(PermissionError(13, "Permission denied")) == "cannot read or write the file: Permission denied"


def test_progress_lines_for_logs(capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    progress = Progress(3, "segment", stream=sys.stderr, every_s=0.0)
    for outcome in ("done", "skipped", "failed"):
        progress.update(outcome)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("segment: 3/3 (1 written, 1 skipped, 1 failed)") and len(lines) == 3
    quiet = Progress(1, "segment", enabled=False, stream=sys.stderr, every_s=0.0)
    quiet.update("done")
    assert capsys.readouterr().err == ""
