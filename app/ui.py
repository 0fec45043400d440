"""The Gradio page: every label in Chinese and English; elem_ids are stable for browser tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gradio as gr

from app import service
from app.backend import Backend
from idphoto.presets import BACKGROUNDS, SHEETS, SIZE_PRESETS, SizePreset

TITLE = "AI 证件照 · AI ID Photo"


def _short(label: str) -> str:
    """A label without its parenthesised details: '白色（护照…）' -> '白色', 'ID blue' stays."""
    return re.sub(r"\s*[(（][^)）]*[)）]", "", label).strip()


def size_label(preset: SizePreset) -> str:
    """'一寸 1 inch (25×35 mm) · 295×413 px'."""
    zh = re.sub(r"\s*\([^)]*mm\)", "", preset.label_zh).strip()
    px = f" · {preset.px[0]}×{preset.px[1]} px" if preset.px else ""
    return f"{zh} {preset.label_en}{px}"


SIZE_CHOICES = [(size_label(p), p.name) for p in SIZE_PRESETS.values()] + [("自定义 Custom (px / mm)", "custom")]
BACKGROUND_CHOICES = [(f"{_short(b.label_zh)} {_short(b.label_en)}", b.name) for b in BACKGROUNDS.values()] + [
    ("自定义颜色 Custom colour", "custom")
]
SHEET_CHOICES = [("不需要 None", "none")] + [(f"{s.label_zh} {s.label_en}", s.name) for s in SHEETS.values()]
CROP_CHOICES = [("人脸居中裁剪 Face-aware crop", "face"), ("保留整张图片 Keep whole picture", "none")]
FORMAT_CHOICES = [("JPEG", "jpeg"), ("PNG（可透明 transparency）", "png")]
UNIT_CHOICES = [("像素 px", "px"), ("毫米 mm", "mm")]


def _document_background(size: str, background: str) -> Any:
    """A document that accepts only some backgrounds (a UK passport: light grey or cream) switches to its first."""
    preset = SIZE_PRESETS.get(size)
    allowed = preset.backgrounds if preset is not None else None
    return allowed[0] if allowed and background not in allowed else gr.skip()


def build(backend: Backend, workdir: Path) -> gr.Blocks:
    """The page; generated files go to fresh folders under `workdir`. Gradio's copies of uploads and results
    are deleted after an hour (portraits are personal data)."""
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        gr.Markdown(
            f"# {TITLE}\n上传一张人像，选择背景色和标准尺寸，生成 300 DPI 证件照。"
            f" Upload a portrait, pick a background colour and a standard size, download a 300 DPI ID photo."
            f"\n\n后端 Backend: {backend.description}",
            elem_id="intro",
        )
        with gr.Row():
            with gr.Column(scale=1):
                image = gr.Image(
                    label="上传人像 Upload portrait", type="filepath", image_mode=None,
                    sources=["upload", "clipboard"], elem_id="input-image", height=360,
                    placeholder="拖放人像照片到这里，或点击上传\n\nDrop a portrait here or click to upload",
                )  # fmt: skip
            with gr.Column(scale=1):
                background = gr.Radio(
                    BACKGROUND_CHOICES, value="white", label="背景颜色 Background colour",
                    info="透明背景仅支持 PNG。 Transparent needs PNG.", elem_id="background",
                )  # fmt: skip
                colour = gr.ColorPicker("#438EDB", label="自定义颜色 Custom colour", elem_id="custom-colour")
                size = gr.Dropdown(SIZE_CHOICES, value="1inch", label="尺寸 Size", elem_id="size")
                with gr.Row(visible=False) as custom_size:
                    unit = gr.Radio(UNIT_CHOICES, value="px", label="单位 Unit", elem_id="custom-unit")
                    width = gr.Number(300, label="宽度 Width", precision=1, minimum=0, elem_id="custom-width")
                    height = gr.Number(400, label="高度 Height", precision=1, minimum=0, elem_id="custom-height")
                    dpi = gr.Number(300, label="分辨率 DPI（毫米时） DPI (for mm)", precision=0, minimum=72,
                                    maximum=1200, elem_id="custom-dpi")  # fmt: skip
                crop = gr.Radio(CROP_CHOICES, value="face", label="裁剪方式 Crop", elem_id="crop")
                largest_face = gr.Checkbox(False, label="多人照片：使用最大的人脸 Several faces: use the largest",
                                           elem_id="largest-face")  # fmt: skip
                with gr.Row():
                    fmt = gr.Radio(FORMAT_CHOICES, value="jpeg", label="格式 Format", elem_id="format")
                    max_kb = gr.Number(
                        0, label="文件大小上限 KB（0 = 不限） Max file size KB (0 = no limit)", precision=0,
                        minimum=0, elem_id="max-kb",
                    )  # fmt: skip
                    min_kb = gr.Number(
                        0, label="文件大小下限 KB（0 = 不限） Min file size KB (0 = no limit)", precision=0,
                        minimum=0, elem_id="min-kb",
                    )  # fmt: skip
                with gr.Row():
                    sheet = gr.Dropdown(SHEET_CHOICES, value="none", label="排版打印 Print sheet", elem_id="sheet")
                    refine = gr.Checkbox(True, label="发丝边缘细化 Refine hair edges", elem_id="refine")
                with gr.Row():
                    white_balance = gr.Checkbox(False, label="自动白平衡 Auto white balance", elem_id="white-balance")
                    brightness = gr.Checkbox(False, label="自动亮度 Auto brightness", elem_id="brightness")
                generate = gr.Button("生成证件照 Generate", variant="primary", elem_id="generate")
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            overlay = gr.Image(
                label="分割结果 Segmentation overlay", interactive=False, format="jpeg", elem_id="overlay",
                height=420, buttons=["fullscreen"],
            )  # fmt: skip
            photo = gr.Image(
                label="证件照 ID photo", type="filepath", interactive=False, elem_id="photo", height=420,
                buttons=["fullscreen"],
            )  # fmt: skip
        with gr.Row():
            download_photo = gr.DownloadButton("下载证件照 Download photo", visible=False, elem_id="download-photo")
            download_sheet = gr.DownloadButton("下载排版照 Download print sheet", visible=False,
                                               elem_id="download-sheet")  # fmt: skip

        def run(*values: Any) -> tuple[Any, ...]:
            image_path, *form = values
            outcome = service.generate(backend, workdir, image_path, service.build_request(*form))
            return (
                outcome.overlay,
                str(outcome.photo) if outcome.photo else None,
                _download(outcome.photo, "下载证件照 Download photo"),
                _download(outcome.sheet, "下载排版照 Download print sheet"),
                outcome.message,
            )

        colour.input(lambda: "custom", None, background)
        background.input(lambda b: "png" if b == "transparent" else gr.skip(), background, fmt)
        size.change(lambda s: gr.Row(visible=s == "custom"), size, custom_size)
        size.input(_document_background, [size, background], background)
        form = [image, background, colour, size, width, height, crop, fmt, max_kb, sheet, refine, largest_face]
        form += [min_kb, white_balance, brightness, unit, dpi]  # service.build_request's order
        generate.click(
            run,
            form,
            [overlay, photo, download_photo, download_sheet, status],
        )
    return page


def _download(path: Path | None, label: str) -> gr.DownloadButton:
    if path is None:
        return gr.DownloadButton(value=None, visible=False)
    return gr.DownloadButton(f"{label} ({path.name})", value=str(path), visible=True)
