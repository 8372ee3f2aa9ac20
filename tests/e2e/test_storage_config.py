"""A STORAGE_URL the service cannot use stops every process at start with
exit code 2 and a message naming the variable, before anything else happens."""

from __future__ import annotations

import subprocess
import sys

import pytest

from photos.config import Settings
from tests.e2e.conftest import free_port
from tests.support.services import ROOT, service_env
from web.wsgi import gunicorn_command

BAD = "s3:/photos-without-a-bucket"


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "consumer"],
        gunicorn_command("127.0.0.1:0", workers=1),
        [sys.executable, "scripts/run.py"],
    ],
    ids=["consumer", "gunicorn", "make-run"],
)
def test_a_malformed_storage_url_exits_with_code_2_and_says_why(
    settings: Settings, command: list[str]
) -> None:
    env = service_env(settings.with_(port=free_port()), STORAGE_URL=BAD)
    done = subprocess.run(command, check=False, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert (
        f"STORAGE_URL must be s3://bucket or s3://bucket/prefix (or unset for THUMBS_DIR), got {BAD!r}"
        in (done.stderr)
    )
