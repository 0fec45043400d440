"""The ID-photo web UI in a real browser: Debian's Chromium (Playwright) -> `python -m app --server` -> a real server.

It saves a full-page screenshot; with SEGSERVING_REFRESH_SCREENSHOTS=1 it also replaces
docs/screenshots/id_photo_ui.png, the one shown in the README. It also runs the README's id_photo example.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import httpx
import numpy as np
import pytest
from helpers import ROOT, child_env
from PIL import Image
from servers import free_port, start_server
from skimage import data

import client_sdk
from app.ui import BACKGROUND_CHOICES, SHEET_CHOICES, SIZE_CHOICES
from idphoto.presets import BACKGROUNDS, SHEETS

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
SCREENSHOT = ROOT / "docs" / "screenshots" / "id_photo_ui.png"
WAIT_MS = 180_000  # a generous limit for waits in the page, not a performance check


def label(choices: list[tuple[str, str]], value: str) -> str:
    """The bilingual label the page shows for a choice's value."""
    return next(text for text, v in choices if v == value)


pytestmark = pytest.mark.slow
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium: apt-get install -y chromium"
)


@contextlib.contextmanager
def start_app(tmp_path: Path, server_address: str) -> Iterator[str]:
    """`python -m app --server ADDR --port FREE` until the page answers; yields its URL."""
    port = free_port()
    log_path = tmp_path / "app.log"
    env = child_env(GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(tmp_path / "gradio"))
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "--server", server_address, "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"the app exited:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the app did not start:\n{log_path.read_text()[-3000:]}"
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server with one worker, shared by this module's tests."""
    with start_server(tmp_path_factory.mktemp("server"), "--thread", "1") as server:
        yield server.address


def choose(page: Page, dropdown: str, option: str) -> None:
    """Pick an option of a Gradio dropdown by its label."""
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def corner_colours(rgb: np.ndarray, face_y: int) -> list[np.ndarray]:
    """Median colour of 5x5 patches at the top corners and at both side edges level with the face (the bottom
    corners of a head-and-shoulders photo hold the shoulders)."""
    w = rgb.shape[1]
    spots = [(0, 0), (0, w - 5), (face_y, 0), (face_y, w - 5)]
    return [np.median(rgb[y : y + 5, x : x + 5].reshape(-1, 3), axis=0) for y, x in spots]


@needs_chromium
def test_generate_and_download_a_blue_one_inch_photo(server_address: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    portrait = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(portrait, "JPEG", quality=95)
    with start_app(tmp_path, server_address) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile", executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
            accept_downloads=True, viewport={"width": 1280, "height": 900},
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(url)
            page.locator("#input-image input[type=file]").set_input_files(portrait)
            page.locator("#input-image img").wait_for()
            # Transparent switches the format to PNG; a custom size shows its width and height fields.
            page.locator("#background").get_by_text(label(BACKGROUND_CHOICES, "transparent")).click()
            expect(page.locator("#format input[value=png]")).to_be_checked(timeout=WAIT_MS)
            page.locator("#format").get_by_text("JPEG", exact=True).click()
            page.locator("#background").get_by_text(label(BACKGROUND_CHOICES, "blue")).click()
            choose(page, "#size", label(SIZE_CHOICES, "custom"))
            expect(page.locator("#custom-width")).to_be_visible(timeout=WAIT_MS)
            expect(page.locator("#custom-unit")).to_be_visible(timeout=WAIT_MS)
            choose(page, "#size", label(SIZE_CHOICES, "1inch"))
            expect(page.locator("#custom-width")).to_be_hidden(timeout=WAIT_MS)
            choose(page, "#sheet", label(SHEET_CHOICES, "4R"))
            expect(page.locator("#format input[value=jpeg]")).to_be_checked()
            page.locator("#generate").click()
            page.locator("#status").get_by_text(re.compile("Done|Error")).wait_for()
            status = page.locator("#status").inner_text()
            assert "Done: 295×413 px, 300 DPI" in status, status
            page.locator("#download-photo").wait_for(state="visible")
            page.locator("#overlay img").wait_for()
            page.locator("#photo img").wait_for()
            downloads = {}
            for control in ("#download-photo", "#download-sheet"):
                with page.expect_download() as started:
                    page.locator(control).click()
                download = started.value
                downloads[control] = tmp_path / download.suggested_filename
                download.save_as(downloads[control])
            page.screenshot(path=tmp_path / "id_photo_ui.png", full_page=True)
        finally:
            browser.close()

    photo_path, sheet_path = downloads["#download-photo"], downloads["#download-sheet"]
    assert (photo_path.name, sheet_path.name) == ("id_photo_1inch_blue.jpg", "id_photo_1inch_blue_sheet_4r.jpg")
    with Image.open(photo_path) as photo:
        assert (photo.format, photo.size) == ("JPEG", (295, 413))
        assert photo.info["dpi"] == pytest.approx((300, 300))
        rgb = np.asarray(photo.convert("RGB"))
    with Image.open(sheet_path) as sheet:
        assert sheet.size == SHEETS["4R"].px and sheet.info["dpi"] == pytest.approx((300, 300))

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(gray, 1.1, 5, minSize=(60, 60))
    assert len(faces) >= 1
    x, y, w, h = max(faces, key=lambda f: int(f[2]) * int(f[3]))
    assert abs((x + w / 2) - 295 / 2) <= 0.1 * 295
    blue = np.array(BACKGROUNDS["blue"].rgb)
    for colour in corner_colours(rgb, int(y + h / 2)):
        assert np.abs(colour - blue).max() <= 8, colour

    # The download holds the server's bytes as produced: no re-encoding on the way through the UI.
    with client_sdk.SegClient(server_address, timeout=120) as client:
        direct = client.id_photo(portrait, background="blue", size="1inch", sheet="4R")
    assert photo_path.read_bytes() == direct.photo
    assert sheet_path.read_bytes() == direct.sheet
    with Image.open(tmp_path / "id_photo_ui.png") as shot:
        assert shot.size[0] == 1280 and shot.size[1] > 900
    if os.environ.get("SEGSERVING_REFRESH_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "id_photo_ui.png", SCREENSHOT)


def test_readme_id_photo_example_runs(server_address: str, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## ID photo application", 1)[1].split("\n## ", 1)[0]
    assert "docs/screenshots/id_photo_ui.png" in section
    (example,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    cv2.imwrite(str(tmp_path / "photo.jpg"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    code = example.replace("127.0.0.1:9393", server_address)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=child_env(), capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("295 413 image/jpeg (")
    with Image.open(tmp_path / "id_photo_1inch_blue.jpg") as photo:
        assert photo.size == (295, 413) and photo.info["dpi"] == pytest.approx((300, 300))
    with Image.open(tmp_path / "id_photo_1inch_blue_sheet_4r.jpg") as sheet:
        assert sheet.size == SHEETS["4R"].px
