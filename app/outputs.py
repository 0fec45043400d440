"""Download files: descriptive names, bytes written exactly as the backend produced them (300 DPI kept)."""

from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path

from app.backend import Generated, PhotoRequest

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}
KEEP_SECONDS = 3600  # results older than this are deleted when the next one is saved


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z-]+", "-", text).strip("-").lower() or "custom"


def _colour(background: str) -> str:
    """'blue' stays; '#3366CC' and '51,102,204' both become '3366cc'."""
    parts = background.split(",")
    if len(parts) == 3 and all(p.strip().isdigit() for p in parts):
        return "".join(f"{min(255, int(p)):02x}" for p in parts)
    return _slug(background)


def base_name(request: PhotoRequest) -> str:
    """id_photo_<size>_<background>, e.g. id_photo_1inch_blue, id_photo_300x400_3366cc or id_photo_35x45mm_white."""
    size = request.size
    if request.size == "custom" and request.width_mm is not None and request.height_mm is not None:
        size = f"{request.width_mm:g}x{request.height_mm:g}mm"
    elif request.size == "custom":
        size = f"{request.width}x{request.height}"
    return f"id_photo_{_slug(size)}_{_colour(request.background)}"


def save(generated: Generated, request: PhotoRequest, root: Path) -> tuple[Path, Path | None]:
    """Write the photo (and the print sheet, if any) into a fresh folder under `root`; returns their paths.
    Folders older than KEEP_SECONDS are removed first."""
    for old in root.glob("*/") if root.is_dir() else ():
        if time.time() - old.stat().st_mtime > KEEP_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
    folder = root / uuid.uuid4().hex
    folder.mkdir(parents=True)
    ext = EXTENSIONS.get(generated.content_type, "bin")
    name = base_name(request)
    photo = folder / f"{name}.{ext}"
    photo.write_bytes(generated.photo)
    if generated.sheet is None:
        return photo, None
    sheet = folder / f"{name}_sheet_{_slug(request.sheet or 'print')}.{ext}"
    sheet.write_bytes(generated.sheet)
    return photo, sheet
