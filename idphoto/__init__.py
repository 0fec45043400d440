"""ID photos from a portrait and its person probability map: face-aware crop, new background, print sheet.

Transport-free: callers decode the upload, run the segmentation model and serve the bytes.
"""

from idphoto.crop import CropPlan
from idphoto.errors import IdPhotoError
from idphoto.face import FaceBox, detect_face
from idphoto.pipeline import IdPhotoOptions, IdPhotoResult, make_id_photo
from idphoto.presets import BACKGROUNDS, SHEETS, SIZE_PRESETS, Background, SheetSpec, SizePreset
from idphoto.sizes import ICAO_RULES, ID_RULES, HeadRules

__all__ = [
    "BACKGROUNDS",
    "ICAO_RULES",
    "ID_RULES",
    "SHEETS",
    "SIZE_PRESETS",
    "Background",
    "CropPlan",
    "FaceBox",
    "HeadRules",
    "IdPhotoError",
    "IdPhotoOptions",
    "IdPhotoResult",
    "SheetSpec",
    "SizePreset",
    "detect_face",
    "make_id_photo",
]
