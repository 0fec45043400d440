"""`python -m client_sdk segment ...` in a child process against a real server: masks, overlays and cut-outs written
at each image's size, failures counted in the summary and the exit code."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import child_env
from PIL import Image
from sdk_support import encoded, photo_rgb
from servers import ServerProcess, free_port, start_server

from client_sdk import SegClient

ROOT = Path(__file__).resolve().parents[2]
IMAGES = {"wide.jpg": (301, 199), "tall.png": (150, 260), "square.png": (256, 256)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("sdk-cli"), "--thread", "2") as srv:
        yield srv


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three good pictures of different sizes and formats, one broken file, and a file that is not an image."""
    folder = tmp_path_factory.mktemp("cli-in")
    for name, size in IMAGES.items():
        (folder / name).write_bytes(encoded(photo_rgb(*size), "JPEG" if name.endswith(".jpg") else "PNG"))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff this is not a picture" * 10)
    (folder / "notes.txt").write_text("not an image: the CLI skips it")
    return folder


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "client_sdk", *map(str, args)], cwd=ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def folder_run(server: ServerProcess, folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("cli-out") / "results"  # created by the CLI
    proc = run_cli("segment", folder, "--server", server.address, "--out", out, "--overlay", "--cutout",
                   "--no-progress")  # fmt: skip
    return out, proc


def test_a_broken_file_fails_the_run_but_not_the_others(folder_run: tuple[Path, subprocess.CompletedProcess[str]],
                                                        folder: Path) -> None:  # fmt: skip
    out, proc = folder_run
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "broken.jpg" in proc.stderr and "failed" in proc.stderr
    summary = proc.stdout.strip().splitlines()[-1]
    assert "3/4 images segmented" in summary
    assert "1 failed" in summary
    assert "images/s" in summary
    assert str(out) in summary
    assert "notes" not in proc.stdout + proc.stderr  # only image suffixes are picked up
    assert not (out / "broken_mask.png").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{Path(name).stem}_{kind}" for name in IMAGES for kind in ("mask.png", "overlay.jpg", "cutout.png")
    )


def test_outputs_are_at_each_images_size(folder_run: tuple[Path, subprocess.CompletedProcess[str]], folder: Path,
                                         server: ServerProcess) -> None:  # fmt: skip
    out, _ = folder_run
    with SegClient(server.address) as client:
        for name, size in IMAGES.items():
            stem = Path(name).stem
            expected = client.segment(folder / name, probability=True)
            with Image.open(out / f"{stem}_mask.png") as mask:
                assert mask.size == size and mask.mode == "L"
                np.testing.assert_array_equal(np.array(mask), expected.label_map)
            with Image.open(out / f"{stem}_overlay.jpg") as overlay:
                assert overlay.format == "JPEG" and overlay.size == size and overlay.mode == "RGB"
            with Image.open(out / f"{stem}_cutout.png") as cutout:
                assert cutout.size == size and cutout.mode == "RGBA"
                rgba = np.array(cutout)
            assert expected.probability is not None
            np.testing.assert_array_equal(rgba[:, :, 3], np.rint(expected.probability * 255).astype(np.uint8))
            with Image.open(folder / name) as original:
                np.testing.assert_array_equal(rgba[:, :, :3], np.array(original.convert("RGB")))


def test_good_files_over_grpc_exit_zero(server: ServerProcess, folder: Path, tmp_path: Path) -> None:
    files = [folder / name for name in IMAGES]
    proc = run_cli("segment", *files, "--server", f"localhost:{server.port}", "--out", tmp_path, "--protocol", "grpc",
                   "--concurrency", "2", "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3/3 images segmented" in proc.stdout and "0 failed" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{Path(n).stem}_mask.png" for n in IMAGES)


def test_progress_bar_by_default(server: ServerProcess, folder: Path, tmp_path: Path) -> None:
    proc = run_cli("segment", folder / "tall.png", "--server", server.url, "--out", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1/1" in proc.stderr  # tqdm draws on stderr
    with Image.open(tmp_path / "tall_mask.png") as mask:
        assert mask.size == IMAGES["tall.png"]


def test_no_images_and_unreachable_server(folder: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("segment", empty, "--out", tmp_path / "out")
    assert proc.returncode == 2 and "no images" in proc.stderr
    proc = run_cli("segment", folder / "tall.png", "--server", f"127.0.0.1:{free_port()}", "--out", tmp_path / "out",
                   "--no-progress", "--timeout", "5")  # fmt: skip
    assert proc.returncode == 1
    assert "1 failed" in proc.stdout and "cannot reach the server" in proc.stderr
