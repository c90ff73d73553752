"""The network policy sources get from the settings: private ranges are blocked by default in
production and open by default locally (the demo reaches databases on this machine)."""

import subprocess
import sys

import pytest

PRODUCTION = {
    "STEWARD_ENV": "production",
    "SECRET_KEY": "x7#Qv9!pL2@mZ4$wR8^tY6&uI1*oP3(aS5)dF0-gH7_jK9+lZ2=xC4",
    "ENCRYPTION_KEYS": "yd6hM0c_bFxq4XK6b6Q3Wlz3m8p8wI9bqR9dYpQmZ3Q=",
    "ALLOWED_HOSTS": "steward.example.com",
}
SHOW = "from sources.services import network_policy; print(network_policy().block_private)"


@pytest.mark.parametrize(
    ("env", "blocked"),
    [
        (PRODUCTION, "True"),
        ({**PRODUCTION, "SOURCE_BLOCK_PRIVATE_NETWORKS": "false"}, "False"),
        ({"STEWARD_ENV": "local"}, "False"),
        ({"STEWARD_ENV": "local", "SOURCE_BLOCK_PRIVATE_NETWORKS": "on"}, "True"),
    ],
)
def test_private_networks_are_blocked_by_default_in_production(tmp_path, env, blocked):
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", SHOW],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "STEWARD_VAR_DIR": str(tmp_path), **env},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == blocked
