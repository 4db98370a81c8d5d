"""The README stays complete as settings and commands are added, and stands on its own."""

from __future__ import annotations

import re
from pathlib import Path

from uoom.config import Settings

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme() -> None:
    missing = []
    for name, field in Settings.model_fields.items():
        aliases = getattr(field.validation_alias, "choices", None) or [f"UOOM_{name.upper()}"]
        if not any(f"`{alias}`" in README for alias in aliases):
            missing.append(name)
    assert missing == []


def _documented_commands() -> set[str]:
    """`uoom stack up\\|down NAME [--x]` rows of the README's command table -> {"stack up", "stack down"}."""
    section = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    documented: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `uoom"):
            continue
        cell = line.split("`")[1].replace("\\|", "|")
        paths = [""]
        for word in cell.split()[1:]:
            if not re.fullmatch(r"[a-z][a-z|-]*", word):
                break  # arguments and options follow the command's name
            paths = [f"{p} {alt}".strip() for p in paths for alt in word.split("|")]
        documented.update(paths)
    return documented


def test_every_command_is_in_the_readme_command_table() -> None:
    import typer

    from commands.main import app

    leaves: list[str] = []

    def walk(path: list[str], cmd: object) -> None:
        subs = getattr(cmd, "commands", None)
        if not subs:
            leaves.append(" ".join(path))
        for name, sub in (subs or {}).items():
            walk([*path, name], sub)

    walk([], typer.main.get_command(app))
    assert sorted(set(leaves) - _documented_commands()) == []


def test_the_readme_links_only_inside_the_repository() -> None:
    targets = re.findall(r"\]\(([^)]+)\)", README)
    outside = [t for t in targets if t.startswith("..") or not (REPO / t.split("#")[0]).exists()]
    assert outside == []
