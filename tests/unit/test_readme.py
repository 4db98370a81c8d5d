"""The README's settings table stays complete as settings are added."""

from __future__ import annotations

from pathlib import Path

from uoom.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme() -> None:
    missing = []
    for name, field in Settings.model_fields.items():
        aliases = getattr(field.validation_alias, "choices", None) or [f"UOOM_{name.upper()}"]
        if not any(f"`{alias}`" in README for alias in aliases):
            missing.append(name)
    assert missing == []
