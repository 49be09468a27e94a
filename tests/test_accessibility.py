"""Accessibility rules checked on the stylesheet itself (WCAG 2.2)."""

from __future__ import annotations

import re
from pathlib import Path

CSS = (Path(__file__).parent.parent / "core" / "static" / "palabre.css").read_text()


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def rule(selector: str) -> str:
    match = re.search(re.escape(selector) + r"\s*\{([^}]*)\}", CSS)
    assert match, f"no rule for {selector}"
    return match.group(1)


def test_the_focus_ring_stands_out_on_white_and_on_the_top_bar():
    """Non-text contrast (1.4.11): at least 3:1 against what surrounds it."""
    ring = rule(":focus-visible")
    outline = re.search(r"outline:\s*\d+px solid (#[0-9a-f]{6})", ring).group(1)
    halo = re.search(r"box-shadow:\s*0 0 0 \d+px (#[0-9a-f]{6})", ring).group(1)
    top_bar = re.search(r"background:\s*(#[0-9a-f]{6})", rule(".topbar")).group(1)
    assert contrast(outline, "#ffffff") >= 3
    # On the dark top bar the halo carries the contrast, and the ring against the halo.
    assert contrast(halo, top_bar) >= 3 and contrast(outline, halo) >= 3
