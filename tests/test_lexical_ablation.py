"""bench/lexical_ablation.py runs model-free on a tiny generated dataset and says when data is missing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "lexical_ablation.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          check=False)


def _row(out: str, label: str) -> list[str]:
    line = next(x for x in out.splitlines() if x.startswith(f"| {label}"))
    return [c.strip() for c in line.strip("|").split("|")[1:]]


def test_smoke_prints_every_variant_per_half() -> None:
    proc = _run("--smoke")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "(smoke)" in out
    assert "smoke-ar A MRR@10 / ansR@5 / chunkR@3" in out
    for label in ("baseline", "a. clitic stemmer", "b. old + question pairs", "d. old + number values", "a+b+d (adopted"):
        cells = _row(out, label)
        assert all(re.fullmatch(r"[01]\.\d{3} / [01]\.\d{3} / [01]\.\d{3}", c) for c in cells[:2]), cells
        assert re.fullmatch(r"\d+ of \d+", cells[2]), cells
    # "3000" in the question finds the passage that writes "ثلاثة آلاف" only with number values.
    assert _row(out, "baseline")[0].startswith("0.833")
    assert _row(out, "a+b+d (adopted")[0].startswith("1.000")
    # The README's demo: the chunk holding @شاميويتنس ranks higher with question pairs.
    base_rank = int(_row(out, "baseline")[2].split()[0])
    pair_rank = int(_row(out, "a+b+d (adopted")[2].split()[0])
    assert pair_rank < base_rank


def test_missing_data_is_said_plainly(tmp_path: Path) -> None:
    proc = _run("--data", str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    assert "no dataset at" in proc.stdout
