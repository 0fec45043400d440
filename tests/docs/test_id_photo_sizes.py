"""docs/id-photo-sizes.md lists every size preset with the numbers the code uses."""

from __future__ import annotations

import re

from helpers import ROOT

from idphoto.sizes import SIZE_PRESETS


def _band(text: str) -> list[float] | None:
    return None if text == "–" else [float(v) for v in text.split("–")]


def test_the_table_matches_the_presets() -> None:
    rows = re.findall(r"^\| `([\w-]+)` \|(.*)\|$", (ROOT / "docs" / "id-photo-sizes.md").read_text(), re.M)
    documented = {name: [cell.strip() for cell in rest.split("|")] for name, rest in rows}
    assert set(documented) == {name for name, preset in SIZE_PRESETS.items() if preset.px is not None}
    for name, cells in documented.items():
        preset, doc = SIZE_PRESETS[name], SIZE_PRESETS[name].as_json()
        label, mm, px, dpi, head, margin, eyes, backgrounds, enforced = cells
        assert label == preset.label_en and dpi == str(preset.dpi)
        assert [float(v) for v in mm.split("×")] == doc["mm"] and [int(v) for v in px.split("×")] == doc["px"]
        assert (_band(head), _band(margin), _band(eyes)) == (doc["head_mm"], doc["crown_margin_mm"],
                                                             doc["eyes_above_bottom_mm"])  # fmt: skip
        assert backgrounds == (", ".join(preset.backgrounds) if preset.backgrounds else "any")
        assert enforced == ("yes" if preset.rules.strict else "no")
