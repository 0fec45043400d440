"""`segserving bulk` on a local Ray: the server's masks for the same images (>= 99.9% of pixels), one plain
failure per bad file, resume, a list of paths as input, and the command line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import child_env
from PIL import Image
from servers import ServerProcess, start_server

from client_sdk import SegClient

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")

from bulk.job import BulkOptions, segment_folder  # noqa: E402  (after the skip: it needs ray at run time)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "client_sdk"))
from sdk_support import write_photos  # noqa: E402

SIZES = [(301, 199), (150, 260), (256, 256), (640, 480), (120, 90), (333, 222), (500, 375), (64, 64), (200, 300)]


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("bulk-server"), "--thread", "1") as srv:
        yield srv


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bulk-in") / "photos"
    write_photos(folder, {f"{'trip/' if i % 3 == 0 else ''}p{i}.{'png' if i % 2 else 'jpg'}": size
                          for i, size in enumerate(SIZES)})  # fmt: skip
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not a picture" * 8)
    return folder


def test_masks_match_the_server_and_bad_files_are_reported(photos: Path, server: ServerProcess,
                                                           tmp_path: Path) -> None:  # fmt: skip
    out = tmp_path / "masks"
    report = segment_folder(photos, out, BulkOptions(recursive=True, actors=2, batch_size=4, progress=False))
    assert (report.total, report.written, report.skipped) == (len(SIZES) + 1, len(SIZES), 0)
    assert [(Path(p).name, why) for p, why in report.failures] == [("broken.jpg", "truncated JPEG image")]
    images = sorted(p for p in photos.rglob("p*.*"))
    agree = total = 0
    with SegClient(server.address) as client:
        for image in images:
            expected = (client.segment(image).label_map > 0).astype(np.uint8) * 255
            with Image.open(out / image.relative_to(photos).with_name(image.name + ".png")) as mask:
                got = np.array(mask)
            assert got.shape == expected.shape
            agree += int((got == expected).sum())
            total += got.size
    assert agree / total >= 0.999, agree / total


def test_resume_and_a_list_of_paths(photos: Path, tmp_path: Path) -> None:
    listed = sorted(photos.rglob("p*.*"))[:3]
    listing = tmp_path / "list.txt"
    listing.write_text("# three of them\n" + "\n".join(map(str, listed)) + "\n\n")
    out = tmp_path / "out"
    first = segment_folder(listing, out, BulkOptions(actors=1, progress=False))
    assert (first.written, first.failures) == (3, [])
    kept = next(out.rglob("*.png"))
    kept.write_bytes(b"kept")  # resumed runs leave existing results alone
    again = segment_folder(listing, out, BulkOptions(actors=1, progress=False, skip_existing=True))
    assert (again.written, again.skipped) == (0, 3) and kept.read_bytes() == b"kept"


def test_the_command_line(photos: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "segserving", "bulk", str(photos), str(tmp_path / "o"), "--actors",
                           "1", "--no-progress"], cwd=ROOT, env=child_env(), capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # broken.jpg
    assert "failed: " in proc.stderr and "broken.jpg: truncated JPEG image" in proc.stderr
    top_level = [p for p in photos.iterdir() if p.is_file() and p.name != "broken.jpg"]
    assert proc.stdout.strip().splitlines()[-1].startswith(f"{len(top_level) + 1} images: {len(top_level)} written")
