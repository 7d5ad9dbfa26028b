"""A one-shot `newsqa ask` in a new process (what a shell user or a cron job pays), against the same command with
transformers and torch imported first, as the ONNX backend did when it took its tokenizer from transformers'
AutoTokenizer (before it read tokenizer.json with the `tokenizers` library). Same index, same questions, same run.

    python bench/one_shot.py                       # the bundled corpus, indexed into a temporary folder; 3 runs each
    python bench/one_shot.py --runs 5 --index-dir DIR
    python bench/one_shot.py --smoke               # one run of the first question each way
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, SAMPLE_CORPUS, header  # noqa: E402

QUESTIONS = ("كم عدد متابعي حساب شامي ويتنس؟", "How does ISIS use the internet to recruit?")
AS_SHIPPED = "from bot.cli import main; raise SystemExit(main(sys.argv[1:]))"
TRANSFORMERS_FIRST = "import transformers, torch; from transformers import AutoTokenizer; " + AS_SHIPPED


def ask(code: str, question: str, index_dir: Path) -> tuple[float, str]:
    """Seconds of one `newsqa ask` in a new process, and what it printed (it must succeed)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "import sys; " + code, "ask", question, "--index-dir", str(index_dir)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"newsqa ask failed:\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per question and way")
    ap.add_argument("--index-dir", type=Path, default=None, help="an index to ask (default: the bundled corpus, indexed now)")
    ap.add_argument("--smoke", action="store_true", help="one run of the first question each way")
    args = ap.parse_args()
    questions = QUESTIONS[:1] if args.smoke else QUESTIONS
    if args.smoke:
        args.runs = 1
    header("one-shot `newsqa ask` in a new process: as shipped vs transformers and torch imported first", args.smoke)
    with tempfile.TemporaryDirectory(prefix="newsqa-one-shot-") as tmp:
        index_dir = args.index_dir
        if index_dir is None:
            index_dir = Path(tmp) / "index"
            subprocess.run([sys.executable, "-m", "bot.cli", "index", "update", "--no-progress", "--corpus", str(SAMPLE_CORPUS),
                            "--index-dir", str(index_dir)], check=True, cwd=ROOT, capture_output=True)
        times: dict[str, list[float]] = {"as shipped": [], "transformers first": []}
        outputs: dict[str, list[str]] = {name: [] for name in times}
        for _ in range(args.runs):
            for question in questions:  # the two ways alternate, so load drifts touch both alike
                for name, code in (("as shipped", AS_SHIPPED), ("transformers first", TRANSFORMERS_FIRST)):
                    seconds, out = ask(code, question, index_dir)
                    times[name].append(seconds)
                    outputs[name].append(out)
    for name, values in times.items():
        print(f"{name:<19}: median {statistics.median(values):6.2f}s  min {min(values):6.2f}s  ({len(values)} ask{'' if len(values) == 1 else 's'})")
    ratio = statistics.median(times["transformers first"]) / statistics.median(times["as shipped"])
    print(f"ratio transformers-first / as shipped: {ratio:.2f}x  (same index, questions and run)")
    print(f"same answers both ways: {outputs['as shipped'] == outputs['transformers first']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
