"""Running the collection's playbooks against a lab, for the deployment tests.

The deployment tests (lab/tests/test_deploy.py, docker/tests/test_playbook.py) run
`ansible-playbook` from the repository's Ansible environment (.venv-ansible, `make lab-test`)
and read its recap: which hosts a run changed.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[3]
ANSIBLE_PLAYBOOK: Final = REPO / ".venv-ansible" / "bin" / "ansible-playbook"
LOGS: Final = REPO / "artifacts" / "lab"
RECAP: Final = re.compile(
    r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


def run_playbook(
    inventory: Path, log_name: str, *extra: str, name: str = "site.yml", timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """Run playbooks/<name> against `inventory`; its output goes to artifacts/lab/<log_name>.log."""
    LOGS.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), f"playbooks/{name}", *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"},
        timeout=timeout,
    )
    (LOGS / f"{log_name}.log").write_text(result.stdout + result.stderr)
    return result


def changed_hosts(output: str) -> dict[str, int]:
    """The hosts the run changed, with their counts, from the last PLAY RECAP of its output."""
    recap = output[output.rindex("PLAY RECAP") :]
    return {host: int(changed) for host, changed, _, _ in RECAP.findall(recap) if changed != "0"}
