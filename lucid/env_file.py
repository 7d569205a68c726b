"""The `.env` file: settings written down beside the project instead of exported.

Read at startup by the settings and by gunicorn's configuration. A variable the environment
sets wins over the file's; values are taken literally (no `${VAR}` expansion).
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

DEFAULT_ENV_FILE = Path(__file__).resolve().parent.parent / ".env"


def env_file_load() -> Path | None:
    """Add to the environment what the file LUCID_ENV_FILE names (default: `.env` beside
    manage.py, when there is one) sets and the environment does not; the file read, or None."""
    named = os.environ.get("LUCID_ENV_FILE")
    path = Path(named) if named else DEFAULT_ENV_FILE
    if not path.exists():
        if named:
            raise ImproperlyConfigured(f"LUCID_ENV_FILE names {named!r}, which does not exist.")
        return None
    load_dotenv(path, override=False, interpolate=False)
    return path
