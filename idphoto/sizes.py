"""Photo sizes: the common Chinese ID sizes and the official passport, visa and ID-card photos of many countries,
each with its head and eye rules (from the issuing authorities' published photo requirements) and the
backgrounds it accepts."""

from __future__ import annotations

from dataclasses import dataclass

DPI = 300
MM_PER_INCH = 25.4


@dataclass(frozen=True)
class HeadRules:
    """Where the head goes, as fractions of the photo height: targets and the accepted bands. `strict` rules (an
    official document's) are met or the photo is refused; the others are targets a short photo may leave."""

    head_ratio: float  # crown-to-chin height
    head_band: tuple[float, float]
    crown_margin: float  # gap between the top edge and the crown
    margin_band: tuple[float, float]
    eye_band: tuple[float, float] | None = None  # the eye line's height above the bottom edge
    strict: bool = False


# Common ID photos (1-inch, 2-inch, large 1-inch): head about two thirds of the height with a tenth above
# it, leaving a quarter of the height for neck and shoulders.
ID_RULES = HeadRules(head_ratio=0.65, head_band=(0.60, 0.70), crown_margin=0.10, margin_band=(0.08, 0.12))
# ICAO 9303 passport/visa photos (35x45 mm): chin to crown 32-36 mm (target 34), 3-5 mm above the crown.
ICAO_RULES = HeadRules(
    head_ratio=34 / 45, head_band=(32 / 45, 36 / 45), crown_margin=4 / 45, margin_band=(3 / 45, 5 / 45), strict=True
)


@dataclass(frozen=True)
class SizePreset:
    """A photo size: px at `dpi` and mm; `px` is None for 'original' (keep the image's size, no crop).
    `backgrounds`: the background names the document accepts (None: any)."""

    name: str
    label_en: str
    label_zh: str
    px: tuple[int, int] | None
    mm: tuple[float, float] | None
    rules: HeadRules = ID_RULES
    dpi: int = DPI
    country: str = ""
    document: str = ""
    backgrounds: tuple[str, ...] | None = None

    def as_json(self) -> dict[str, object]:
        """The preset as GET /v1/id-photo/presets lists it (bands in mm, measured on the photo's height)."""
        height = self.mm[1] if self.mm else None

        def mm(band: tuple[float, float] | None) -> list[float] | None:
            return None if band is None or height is None else [round(band[0] * height, 1), round(band[1] * height, 1)]

        return {
            "name": self.name, "label_en": self.label_en, "label_zh": self.label_zh, "country": self.country,
            "document": self.document, "mm": list(self.mm) if self.mm else None,
            "px": list(self.px) if self.px else None, "dpi": self.dpi,
            "head_mm": mm(self.rules.head_band), "crown_margin_mm": mm(self.rules.margin_band),
            "eyes_above_bottom_mm": mm(self.rules.eye_band), "official": self.rules.strict,
            "backgrounds": list(self.backgrounds) if self.backgrounds else None,
        }  # fmt: skip


def px(mm: tuple[float, float], dpi: int = DPI) -> tuple[int, int]:
    return round(mm[0] / MM_PER_INCH * dpi), round(mm[1] / MM_PER_INCH * dpi)


def official(height_mm: float, head: tuple[float, float], margin: tuple[float, float],
             eyes: tuple[float, float] | None = None) -> HeadRules:  # fmt: skip
    """Rules in mm of a `height_mm` photo: chin-to-crown `head`, crown-to-top `margin`, optionally the eye line's
    height above the bottom edge; the targets are the middles of the bands. Enforced: a photo that cannot meet
    them is refused."""
    mid = (head[0] + head[1]) / 2, (margin[0] + margin[1]) / 2
    return HeadRules(
        head_ratio=mid[0] / height_mm,
        head_band=(head[0] / height_mm, head[1] / height_mm),
        crown_margin=mid[1] / height_mm,
        margin_band=(margin[0] / height_mm, margin[1] / height_mm),
        eye_band=None if eyes is None else (eyes[0] / height_mm, eyes[1] / height_mm),
        strict=True,
    )


ICAO = ICAO_RULES  # ICAO 9303 / ISO 19794-5 on 35x45 mm: head 32-36 mm (70-80 % of the height), 3-5 mm above
LIGHT = ("white", "light-grey")
INCH = MM_PER_INCH
_US = official(2 * INCH, (INCH, 1.375 * INCH), (3, 14), eyes=(1.125 * INCH, 1.375 * INCH))  # 2x2 in: head 1-1 3/8 in,
# eyes 1 1/8-1 3/8 in above the bottom


def _size(name: str, en: str, zh: str, mm: tuple[float, float], rules: HeadRules = ID_RULES, dpi: int = DPI,
          country: str = "", document: str = "", backgrounds: tuple[str, ...] | None = None) -> SizePreset:  # fmt: skip
    return SizePreset(name, en, zh, px(mm, dpi), mm, rules, dpi, country, document, backgrounds)


SIZE_PRESETS: dict[str, SizePreset] = {
    p.name: p
    for p in (
        SizePreset("original", "Original size (no crop)", "原图尺寸（不裁剪）", None, None),
        # Chinese photo sizes in everyday use (exams, résumés, forms): head about two thirds of the height
        _size("1inch", "1 inch (25×35 mm)", "一寸 (25×35 mm)", (25, 35), country="CN"),
        _size("1inch-small", "Small 1 inch (22×32 mm)", "小一寸 (22×32 mm)", (22, 32), country="CN"),
        _size("1inch-large", "Large 1 inch (33×48 mm)", "大一寸 (33×48 mm)", (33, 48), country="CN"),
        _size("2inch-small", "Small 2 inch (35×45 mm)", "小二寸 (35×45 mm)", (35, 45), ICAO, country="CN"),
        _size("2inch", "2 inch (35×53 mm)", "二寸 (35×53 mm)", (35, 53), country="CN"),
        _size("2inch-standard", "Standard 2 inch (35×49 mm)", "标准二寸 (35×49 mm)", (35, 49), country="CN"),
        # Official documents
        _size("cn-passport", "China passport (33×48 mm)", "中国护照 (33×48 mm)", (33, 48),
              official(48, (28, 33), (3, 5)), country="CN", document="passport", backgrounds=("white",)),
        _size("cn-visa", "China visa (33×48 mm)", "中国签证 (33×48 mm)", (33, 48),
              official(48, (28, 33), (3, 5)), country="CN", document="visa", backgrounds=("white",)),
        # 358x441 px at 350 DPI as the card's photo file; the head follows the everyday rules above
        _size("cn-id-card", "China resident ID card (26×32 mm, 350 DPI)", "中国居民身份证 (26×32 mm, 350 DPI)",
              (26, 32), dpi=350, country="CN", document="ID card", backgrounds=("white",)),
        _size("us-passport", "US passport / visa (2×2 in)", "美国护照/签证 (2×2 英寸)", (50.8, 50.8), _US,
              dpi=300, country="US", document="passport, visa", backgrounds=("white",)),
        _size("schengen-visa", "Schengen visa (35×45 mm)", "申根签证 (35×45 mm)", (35, 45), ICAO,
              country="EU", document="visa", backgrounds=LIGHT),
        _size("eu-passport", "EU passport / ID card (35×45 mm)", "欧盟护照/身份证 (35×45 mm)", (35, 45), ICAO,
              country="EU", document="passport, ID card", backgrounds=LIGHT),
        _size("uk-passport", "UK passport (35×45 mm)", "英国护照 (35×45 mm)", (35, 45),
              official(45, (29, 34), (3, 6)), country="GB", document="passport", backgrounds=("light-grey", "cream")),
        _size("ca-passport", "Canada passport (50×70 mm)", "加拿大护照 (50×70 mm)", (50, 70),
              official(70, (31, 36), (5, 15)), country="CA", document="passport", backgrounds=LIGHT),
        _size("ca-visa", "Canada visa (35×45 mm)", "加拿大签证 (35×45 mm)", (35, 45),
              official(45, (31, 36), (3, 6)), country="CA", document="visa", backgrounds=LIGHT),
        _size("in-passport", "India passport / visa (2×2 in)", "印度护照/签证 (2×2 英寸)", (50.8, 50.8), _US,
              country="IN", document="passport, visa", backgrounds=("white",)),
        _size("in-passport-35x45", "India passport (35×45 mm)", "印度护照 (35×45 mm)", (35, 45), ICAO,
              country="IN", document="passport", backgrounds=("white",)),
        _size("jp-passport", "Japan passport (35×45 mm)", "日本护照 (35×45 mm)", (35, 45),
              official(45, (32, 36), (2, 6)),
              country="JP", document="passport", backgrounds=LIGHT),
        _size("jp-30x40", "Japan résumé / licence (30×40 mm)", "日本履历书/驾照 (30×40 mm)", (30, 40),
              country="JP", document="résumé, driving licence"),
        _size("kr-passport", "Korea passport (35×45 mm)", "韩国护照 (35×45 mm)", (35, 45), ICAO,
              country="KR", document="passport", backgrounds=("white",)),
        _size("au-passport", "Australia passport (35×45 mm)", "澳大利亚护照 (35×45 mm)", (35, 45), ICAO,
              country="AU", document="passport", backgrounds=LIGHT),
        _size("nz-passport", "New Zealand passport (35×45 mm)", "新西兰护照 (35×45 mm)", (35, 45), ICAO,
              country="NZ", document="passport", backgrounds=LIGHT),
        _size("sg-passport", "Singapore passport (35×45 mm)", "新加坡护照 (35×45 mm)", (35, 45),
              official(45, (25, 35), (3, 8)), country="SG", document="passport", backgrounds=("white",)),
        _size("tw-passport", "Taiwan passport (35×45 mm)", "台湾护照 (35×45 mm)", (35, 45), ICAO,
              country="TW", document="passport", backgrounds=("white",)),
        _size("hk-passport", "Hong Kong passport (40×50 mm)", "香港护照 (40×50 mm)", (40, 50),
              official(50, (32, 36), (4, 8)), country="HK", document="passport", backgrounds=LIGHT),
    )
}  # fmt: skip
