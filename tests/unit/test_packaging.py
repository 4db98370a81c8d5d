"""What a built wheel carries: the migrations and the Kafka pom as package data, the local
DynamoDB server only as the `stack` extra."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("uoom", "daemons", "commands", "tui")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    # A copy of the sources: an in-tree build would leave build/ and egg-info in the checkout.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in PACKAGES:
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (built,) = out.glob("uoom-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_carries_every_migration_and_the_kafka_pom(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    migrations = sorted(p.name for p in (REPO / "uoom" / "migrations").glob("*.sql"))
    assert migrations, "no migration in uoom/migrations"
    assert {f"uoom/migrations/{m}" for m in migrations} <= names
    assert "uoom/stack/kafka-pom.xml" in names
    assert {"commands/main.py", "daemons/supervisor.py", "uoom/migrate.py"} <= names
    assert "uoom/replay/synthetic-day.json" in names  # `uoom channels weights tune` replays it


def test_moto_is_an_extra_of_the_local_stack_not_a_runtime_dependency(wheel: zipfile.ZipFile) -> None:
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    requires = [line for line in wheel.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")]
    moto = [line for line in requires if "moto" in line]
    assert moto and all('extra == "stack"' in line for line in moto)


def test_migrate_finds_the_migrations_beside_its_module() -> None:
    from uoom import migrate

    assert Path(migrate.__file__).parent / "migrations" == migrate.MIGRATIONS_DIR
    assert [m.path.name for m in migrate.load()] == sorted(p.name for p in migrate.MIGRATIONS_DIR.glob("*.sql"))


def test_an_installed_wheel_finds_its_migrations(wheel: zipfile.ZipFile, tmp_path: Path) -> None:
    site = tmp_path / "site"
    wheel.extractall(site)  # a pure-Python wheel installs by unpacking
    probe = "import uoom.migrate as m; print(m.__file__); print(' '.join(x.path.name for x in m.load()))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    module, names = result.stdout.splitlines()
    assert module.startswith(str(site))  # the unpacked wheel, not the checkout
    assert names.split() == sorted(p.name for p in (REPO / "uoom" / "migrations").glob("*.sql"))
