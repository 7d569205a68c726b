"""The settings as a fresh process computes them from an environment of the test's making."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.processes import REPO


def settings_loaded(
    expression: str, *, storage: Path, project: Path = REPO, **environment: str
) -> subprocess.CompletedProcess:
    """A process of `project` given only `environment` that imports the settings as `s` and
    prints `expression` as JSON."""
    code = f"import json, lucid.settings as s; print(json.dumps({expression}, default=str))"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env={"PATH": "/usr/bin:/bin", "LUCID_STORAGE_PATH": str(storage), **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )


def settings_value(
    expression: str, *, storage: Path, project: Path = REPO, **environment: str
) -> Any:
    """What `expression` over the settings `s` is in such a process, which must start."""
    loaded = settings_loaded(expression, storage=storage, project=project, **environment)
    assert loaded.returncode == 0, loaded.stderr
    return json.loads(loaded.stdout)
