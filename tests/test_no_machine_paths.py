"""No absolute path of any machine in the repository: code, docs, bench results must work on a user's clone."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _grep(pattern: str, fixed: bool) -> list[str]:
    args = ["git", "grep", "--untracked", "-n", "-I", "-F" if fixed else "-P", "-e", pattern, "--", "."]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr  # 1: no match
    return [line for line in proc.stdout.splitlines() if line]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_no_absolute_machine_paths_in_the_repository() -> None:
    found: list[str] = []
    # This checkout's own surroundings: the folder it sits in, and the home of whoever runs the tests.
    for here in {str(ROOT.parent), str(Path.home())}:
        if here.count("/") >= 1 and len(here) > 4:  # "/" or "/tmp"-like roots would match everything
            found += _grep(here + "/", fixed=True)
    # Typical machine locations used as real paths (after a space, quote, `=`, `(` or at line start; URLs
    # such as https://host/home/... are not paths). Spelled in pieces so this file does not match itself.
    roots = "|".join(["wo" + "rk", "ro" + "ot", "ho" + "me/[\\w.-]+", "Us" + "ers/[\\w.-]+", "t" + "mp", "o" + "pt"])
    found += _grep(rf"(?:^|[\s\"'`=(]){'/'}(?:{roots})/", fixed=False)
    found = sorted(set(found))
    assert not found, "absolute machine paths in the repository (use relative paths or settings):\n" + "\n".join(found)


def test_the_pattern_catches_what_it_should() -> None:
    roots = "|".join(["wo" + "rk", "ro" + "ot", "ho" + "me/[\\w.-]+", "Us" + "ers/[\\w.-]+", "t" + "mp", "o" + "pt"])
    rx = re.compile(rf"(?:^|[\s\"'`=(]){'/'}(?:{roots})/")
    for bad in ("NEWSQA_MODELS_DIR=/wo" + "rk/main/models", "python /ro" + "ot/x.py", "`/ho" + "me/ann/data`"):
        assert rx.search(bad), bad
    for fine in ("https://github.com/google-deepmind/xquad", "../shared/data/xquad-ar", "bench/out/x.json"):
        assert not rx.search(fine), fine
