"""The README's first steps work verbatim after ``scripts/start``.

The data folder is prepared by the very lines ``scripts/start`` runs before it
serves (between its ``# >>> prepare`` and ``# <<< prepare`` marks), then each
command of the README's first-steps block runs in one shell, in order, with an
environment that holds none of Touchstream's settings and no ``touchstream`` on
the ``PATH``: only what the README's own first line provides.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARK = "<!-- first-steps:"


def first_steps() -> list[str]:
    """The commands of the README's first-steps block (continued lines joined)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index(MARK):].split("```sh\n", 1)[1].split("```", 1)[0]
    commands: list[str] = []
    pending = ""
    for line in block.splitlines():
        pending += line + "\n"
        if not line.endswith("\\"):
            commands.append(pending.rstrip("\n"))
            pending = ""
    return [c for c in commands if c.strip()]


def prepare_lines() -> str:
    script = (ROOT / "scripts" / "start").read_text(encoding="utf-8")
    after_mark = script.split("# >>> prepare", 1)[1].split("\n", 1)[1]
    return after_mark.split("# <<< prepare", 1)[0]


def clean_env(home: Path) -> dict[str, str]:
    """No Touchstream settings, and no ``touchstream`` already on the PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHSTREAM_")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep)
        if p and not (Path(p) / "touchstream").exists())
    env["HOME"] = str(home)
    return env


@pytest.fixture
def started(tmp_path: Path) -> Path:
    """A folder laid out like a clone after ``scripts/start`` (its ``.venv`` is this one)."""
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    assert (tmp_path / ".venv" / "bin" / "touchstream").exists(), "project not installed"
    done = subprocess.run(["bash", "-c", "set -euo pipefail\n" + prepare_lines()],
                          cwd=tmp_path, env=clean_env(tmp_path), capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert '"token": "tsk_' in done.stdout, "scripts/start shows the admin key"
    printed = re.search(r"^  export (.+)$", done.stderr, re.MULTILINE)
    assert printed, f"scripts/start prints the next commands:\n{done.stderr}"
    assert f'TOUCHSTREAM_DATA="{tmp_path}/touchstream-data"' in printed.group(1)
    assert "TOUCHSTREAM_DEFAULT_REGION=GB" in printed.group(1)
    return tmp_path


@pytest.mark.slow
def test_the_readme_first_steps_work_verbatim_after_scripts_start(started: Path) -> None:
    commands = first_steps()
    assert commands[0].startswith("export PATH="), "the first step puts touchstream on the PATH"
    script = []
    for i, command in enumerate(commands):
        script += [f"echo '::step {i}::'", command,
                   '__rc=("${PIPESTATUS[@]}")',
                   # A writer into `head` may end with 141 (its reader closed early, as
                   # documented): fine anywhere but at the end of a pipeline.
                   (f'__n=${{#__rc[@]}}; for __k in "${{!__rc[@]}}"; do __r=${{__rc[$__k]}}; '
                    f'[ "$__r" = 0 ] || {{ [ "$__r" = 141 ] && [ $((__k + 1)) -lt "$__n" ]; }} '
                    f'|| {{ echo "step {i} exited ${{__rc[*]}}" >&2; exit 1; }}; done')]
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=started,
                          env=clean_env(started), capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, f"{done.stderr}\n--- output:\n{done.stdout}"
    out = dict(re.findall(r"::step (\d+)::\n(.*?)(?=::step \d+::|\Z)", done.stdout, re.DOTALL))
    by_command = {commands[int(i)].split("#")[0]: text for i, text in out.items()}
    create, call = (next(t for c, t in by_command.items() if needle in c)
                    for needle in ("customer create", "record call"))
    ada = re.search(r'"customer_id": "([0-9a-f-]{36})"', create)
    assert ada and f'"customer_id": "{ada.group(1)}"' in call, "the call landed on Ada"
    timeline = next(t for c, t in by_command.items() if c.startswith('touchstream timeline'))
    for kind in ("visit", "email", "call", "registered"):
        assert re.search(rf"\b{kind}\b", timeline), (kind, timeline)
    shown = next(t for c, t in by_command.items() if "customer show" in c)
    assert shown.startswith("Ada Lovelace\n") and "+441314960018" in shown
    assert "Traceback" not in done.stderr, done.stderr
