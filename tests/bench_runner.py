"""Runs a bench script in its smallest (--smoke) mode, for the tests that check what it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def run_bench(script: str, *args: str, timeout: float = 150) -> str:
    """The script's output; it must finish in time, exit 0, say it ran as a smoke run and read the shipped slice."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--smoke", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "(smoke)" in proc.stdout
    assert "XQuAD-ar data: xquad-ar-slice (shipped slice)" in proc.stdout  # proves ../shared was not needed
    return proc.stdout
