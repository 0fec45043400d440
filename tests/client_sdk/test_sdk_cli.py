"""`segserving segment` / `segserving id-photo` (as `python -m segserving`, and `python -m client_sdk`) in child
processes against a real server: output names that never collide, subfolders kept, visible masks, every output
kind at each image's size, resume, one plain line per bad file, logs without carriage returns, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import child_env
from PIL import Image
from sdk_support import encoded, photo_rgb, write_photos
from servers import ServerProcess, free_port, start_server

from client_sdk import SegClient, SegServingError

ROOT = Path(__file__).resolve().parents[2]
Run = subprocess.CompletedProcess[str]
# a.jpg and a.png: same stem, different pictures (sizes differ, so a collision would show)
IMAGES = {"a.jpg": (301, 199), "a.png": (150, 260), "sub/b.png": (256, 256), "sub/deeper/c.webp": (120, 90)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("sdk-cli"), "--thread", "2") as srv:
        yield srv


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pictures in a tree, a broken JPEG, and a text file."""
    folder = tmp_path_factory.mktemp("cli-in") / "photos"
    write_photos(folder, IMAGES)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff this is not a picture" * 10)
    (folder / "notes.txt").write_text("not an image: folders only contribute images")
    return folder


def cli(*args: str | Path, module: str = "segserving") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def out_names(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def recursive_run(server: ServerProcess, folder: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run]:  # fmt: skip
    out = tmp_path_factory.mktemp("cli-out") / "masks"
    return out, cli("segment", folder, "-r", "-o", out, "--server", server.address, "--progress-every", "0")


def test_subfolders_are_kept_and_names_never_collide(recursive_run: tuple[Path, Run],
                                                     folder: Path) -> None:  # fmt: skip
    out, _ = recursive_run
    assert out_names(out) == sorted(f"{name}.png" for name in IMAGES)
    for name, size in IMAGES.items():
        with Image.open(out / f"{name}.png") as mask:
            assert mask.size == size, name  # a.jpg.png and a.png.png hold each their own picture's mask


def test_a_bad_file_is_one_plain_line_and_the_others_go_on(recursive_run: tuple[Path, Run],
                                                           folder: Path) -> None:  # fmt: skip
    out, proc = recursive_run
    assert proc.returncode == 1, proc.stderr
    failures = [line for line in proc.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failures) == 1 and "broken.jpg: not an image" in failures[0], proc.stderr
    assert "BytesIO" not in proc.stderr and "Traceback" not in proc.stderr and "notes" not in proc.stderr
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith("5 images: 4 written, 0 skipped (already there), 1 failed") and str(out) in summary


def test_logs_get_plain_progress_lines_without_carriage_returns(
        recursive_run: tuple[Path, Run]) -> None:  # fmt: skip
    _, proc = recursive_run
    assert "\r" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("segment: ")]
    assert lines and lines[-1].startswith("segment: 5/5 (4 written, 0 skipped, 1 failed)"), proc.stderr


def test_masks_are_visible_and_match_the_sdk(recursive_run: tuple[Path, Run],
                                             folder: Path, server: ServerProcess) -> None:  # fmt: skip
    out, _ = recursive_run
    with SegClient(server.address) as client:
        expected = client.segment(folder / "a.jpg").label_map
    with Image.open(out / "a.jpg.png") as mask:
        values = np.array(mask)
    assert mask.mode == "L" and set(np.unique(values)) <= {0, 255} and values.max() == 255
    np.testing.assert_array_equal(values, (expected > 0).astype(np.uint8) * 255)


def test_without_recursive_only_the_top_folder(server: ServerProcess, folder: Path, tmp_path: Path) -> None:
    proc = cli("segment", folder, "-o", tmp_path, "--server", server.address, "--no-progress")
    assert out_names(tmp_path) == ["a.jpg.png", "a.png.png"]
    assert proc.returncode == 1  # broken.jpg is in the top folder


@pytest.mark.parametrize(("kind", "mode"), [("probability", "L"), ("overlay", "RGB"), ("cutout", "RGBA")])
def test_output_kinds(server: ServerProcess, folder: Path, tmp_path: Path, kind: str, mode: str) -> None:
    proc = cli("segment", folder / "a.jpg", "-o", tmp_path, "--output", kind, "--server", server.address,
               "--protocol", "grpc", "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with SegClient(server.address) as client:
        expected = client.segment(folder / "a.jpg", probability=True)
    assert expected.probability is not None
    probability = np.rint(expected.probability * 255).astype(np.uint8)
    with Image.open(tmp_path / "a.jpg.png") as result:
        assert (result.mode, result.size) == (mode, IMAGES["a.jpg"])
        pixels = np.array(result)
    with Image.open(folder / "a.jpg") as original:
        rgb = np.array(original.convert("RGB"))
    if kind == "probability":
        np.testing.assert_array_equal(pixels, probability)
    elif kind == "cutout":
        np.testing.assert_array_equal(pixels[:, :, 3], probability)
        np.testing.assert_array_equal(pixels[:, :, :3], rgb)
    else:
        person = expected.label_map == 1
        assert (pixels[person] != rgb[person]).any() and (pixels[~person] != rgb[~person]).any()


def test_skip_existing_resumes(server: ServerProcess, folder: Path, tmp_path: Path) -> None:
    inputs = [folder / "a.jpg", folder / "a.png", folder / "sub" / "b.png"]
    first = cli("segment", *inputs, "-o", tmp_path, "--server", server.address, "--no-progress")
    assert first.returncode == 0, first.stderr
    assert out_names(tmp_path) == ["a.jpg.png", "a.png.png", "sub/b.png.png"]  # below the inputs' common folder
    kept = tmp_path / "a.jpg.png"
    os.utime(kept, (1, 1))
    (tmp_path / "sub" / "b.png.png").unlink()
    again = cli("segment", *inputs, "-o", tmp_path, "--server", server.address, "--no-progress", "--skip-existing")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1].startswith("3 images: 1 written, 2 skipped (already there)")
    assert kept.stat().st_mtime == 1 and (tmp_path / "sub" / "b.png.png").is_file()
    assert not [p for p in tmp_path.rglob("*.part")]


def test_no_images_bad_paths_and_an_unreachable_server(folder: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli("segment", empty, "-o", tmp_path / "out")
    assert proc.returncode == 2 and "no images in" in proc.stderr and "-r for subfolders" in proc.stderr
    proc = cli("segment", tmp_path / "nope.jpg", "-o", tmp_path / "out")
    assert proc.returncode == 2 and "nope.jpg: no such file or folder" in proc.stderr
    good = [folder / name for name in IMAGES]
    proc = cli("segment", *good, "-o", tmp_path / "out", "--server", f"127.0.0.1:{free_port()}", "--no-progress",
               "--timeout", "5")  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.count("cannot reach") == 1 and "failed: " not in proc.stderr  # stopped at the first, once
    assert not (tmp_path / "out").exists() or not out_names(tmp_path / "out")


def test_python_m_client_sdk_is_the_same_command(server: ServerProcess, folder: Path, tmp_path: Path) -> None:
    proc = cli("segment", folder / "a.png", "--out", tmp_path, "--server", server.url, "--no-progress",
               module="client_sdk")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert out_names(tmp_path) == ["a.png.png"]


# ----- id-photo -----
def test_id_photo_one_file_with_a_print_sheet(server: ServerProcess, tmp_path: Path) -> None:
    portrait = tmp_path / "me.jpg"
    portrait.write_bytes(encoded(photo_rgb(512, 512), "JPEG"))
    out = tmp_path / "id" / "id.jpg"
    proc = cli("id-photo", portrait, "-o", out, "--background", "blue", "--size", "1inch", "--sheet", "4R",
               "--server", server.address, "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as photo:
        assert (photo.format, photo.size) == ("JPEG", (295, 413))
        corner = np.array(photo.convert("RGB"))[2, 2].astype(int)
    assert corner[2] > 150 and corner[0] < 100  # the blue background
    with Image.open(out.with_name("id.sheet.jpg")) as sheet:
        assert sheet.format == "JPEG" and sheet.size[0] > 295 * 2


def test_id_photo_over_a_folder_reports_a_photo_without_a_face(server: ServerProcess, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "me.jpg").write_bytes(encoded(photo_rgb(512, 512), "JPEG"))
    (photos / "wall.png").write_bytes(encoded(np.full((300, 300, 3), 200, np.uint8), "PNG"))
    proc = cli("id-photo", photos, "-o", tmp_path / "ids", "--format", "png", "--server", server.address,
               "--no-progress")  # fmt: skip
    assert proc.returncode == 1
    assert out_names(tmp_path / "ids") == ["me.jpg.png"]
    failures = [line for line in proc.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failures) == 1 and "wall.png" in failures[0] and "face" in failures[0], proc.stderr


def test_id_photo_levels_the_head_and_needs_face_largest_for_a_group(server: ServerProcess) -> None:
    """SegClient.id_photo over HTTP: the tilt it levelled is reported; a photo with two people is refused with a
    422 naming the count, and made from the larger face with face='largest'."""
    portrait = photo_rgb(512, 512)
    pair = np.hstack([portrait, np.vstack([photo_rgb(384, 384), np.repeat(photo_rgb(384, 384)[-1:], 128, axis=0)])])
    with SegClient(server.address) as client:
        photo = client.id_photo(portrait)
        assert 2.0 <= photo.levelled_degrees <= 4.5 and photo.face_box is not None  # her head leans ~3 degrees
        with pytest.raises(SegServingError, match="2 faces found in the photo") as refused:
            client.id_photo(pair)
        assert refused.value.status == 422
        largest = client.id_photo(pair, face="largest")
        assert (
            largest.face_box is not None and largest.face_box[0] < 512 and (largest.width, largest.height) == (295, 413)
        )


def test_presets_through_the_sdk_and_the_cli(server: ServerProcess) -> None:
    with SegClient(server.address) as client:
        catalogue = client.id_photo_presets()
        sizes = {s["name"]: s for s in catalogue["sizes"]}
        assert len(sizes) >= 25 and sizes["us-passport"]["head_mm"] == [25.4, 34.9]
        assert sizes["uk-passport"]["backgrounds"] == ["light-grey", "cream"]
        assert {b["name"] for b in catalogue["backgrounds"]} >= {"white", "light-grey", "cream", "transparent"}
        # no background given: the document's own (a UK passport's is light grey)
        photo = client.id_photo(photo_rgb(1024, 1024), size="uk-passport")
        assert (photo.width, photo.height) == (413, 531)
        assert np.abs(photo.image()[3, 3].astype(int) - 220).max() <= 3
    proc = cli("presets", "--server", server.address)
    assert proc.returncode == 0, proc.stderr
    (row,) = [line.split() for line in proc.stdout.splitlines() if line.startswith("schengen-visa ")]
    assert row[1:5] == ["35x45", "413x531", "300", "32-36"] and row[-1] == "white,light-grey"


def test_id_photo_tone_switches_and_a_size_in_millimetres(server: ServerProcess, tmp_path: Path) -> None:
    """white_balance and brightness reach the server and report what they applied; a custom size in mm at a DPI
    gives its pixels and DPI, through the SDK and the CLI."""
    bluish = np.clip(photo_rgb(512, 512).astype(np.float32) * (0.85, 0.95, 1.3), 0, 255).astype(np.uint8)
    mm = {"size": "custom", "width_mm": 35, "height_mm": 45, "dpi": 200}
    with SegClient(server.address) as client:
        plain = client.id_photo(bluish, rgb=True, **mm)
        corrected = client.id_photo(bluish, white_balance=True, brightness=True, rgb=True, **mm)
    assert (plain.width, plain.height) == (corrected.width, corrected.height) == (276, 354)
    assert plain.white_balance_gains == (1.0, 1.0, 1.0) and plain.exposure == 1.0
    red, green, blue = corrected.white_balance_gains
    assert blue < 1.0 < min(red, green)  # the cast was blue: blue is turned down, red and green up
    face = corrected.image()[150:250, 100:180].reshape(-1, 3).mean(axis=0)  # her cheeks and nose
    assert face[2] < plain.image()[150:250, 100:180].reshape(-1, 3).mean(axis=0)[2]
    source = tmp_path / "bluish.png"
    source.write_bytes(encoded(bluish, "PNG"))
    proc = cli("id-photo", source, "-o", tmp_path / "id.jpg", "--white-balance", "--brightness", "--size", "custom",
               "--width-mm", "35", "--height-mm", "45", "--dpi", "200", "--server", server.address)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with Image.open(tmp_path / "id.jpg") as written:
        assert written.size == (276, 354) and written.info["dpi"] == pytest.approx((200, 200))
    assert (tmp_path / "id.jpg").read_bytes() == corrected.photo
