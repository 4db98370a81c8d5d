"""`uoom doctor` reads running daemons through their metrics (the kit's `--check`): the API and the
optimizer started here are `ok`; the relay, not started, fails with `uoom up` as the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import REPO, free_port, run_api, run_daemon


def test_running_daemons_are_ok_and_a_missing_one_names_uoom_up(demo: None, tmp_path: Path) -> None:
    optimizer_port = free_port()
    optimizer = f"http://127.0.0.1:{optimizer_port}"
    env = dict(os.environ, UOOM_DISPATCH_INTERVAL="3600")
    with (
        run_daemon(
            tmp_path / "optimizer.log", ["optimizer", "--port", str(optimizer_port)], env, f"{optimizer}/healthz"
        ),
        run_api(tmp_path, "doctor", UOOM_OPTIMIZER_URL=optimizer) as api,
    ):
        doctor_env = dict(
            api.env,
            UOOM_API_PORT=api.url.rsplit(":", 1)[1],
            UOOM_OPTIMIZER_PORT=str(optimizer_port),
            UOOM_RELAY_METRICS_PORT=str(free_port()),
            DAX_ENDPOINT="",
        )
        result = subprocess.run(
            [sys.executable, "-m", "commands", "doctor", "--json"],
            cwd=REPO,
            env=doctor_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    rows = {row["name"]: row for row in json.loads(result.stdout)["checks"]}
    assert rows["api"]["state"] == "ok", rows["api"]
    assert rows["optimizer"]["state"] == "ok", rows["optimizer"]
    assert rows["relay"]["state"] == "fail" and "`uoom up`" in rows["relay"]["fix"]
    assert result.returncode == 1
