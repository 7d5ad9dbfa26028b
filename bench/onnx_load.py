"""Opening the ONNX copies: weights beside the graph (as provisioned) vs inside the graph's one file, same run.

Every process that encodes opens one or two ONNX Runtime sessions: a one-shot `newsqa ask`, the bot, each build and
each Ray worker. This script makes a temporary copy of the provisioned ONNX folder with each model's weights put back
inside its graph's file (as exports were written before), then, in fresh processes taking turns, opens each model
both ways and encodes one question: seconds to open, CPU seconds and peak RSS of the process, and whether both ways
give the same vector.

    python bench/onnx_load.py                 # both models, 5 processes per way and model
    python bench/onnx_load.py --smoke         # the int8 model, 1 process per way
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, header, models_dir  # noqa: E402

# One fresh process: open the session, encode one question, print what it measured as JSON.
CHILD = """
import json, resource, sys, time
from pathlib import Path
from index.onnx_backend import OnnxEncoder
started = time.perf_counter()
encoder = OnnxEncoder(Path(sys.argv[1]), int8=sys.argv[2] == "int8", threads=1)
opened = time.perf_counter() - started
vector = encoder.encode(["query: كم عدد متابعي حساب شامي ويتنس؟"])[0]
usage = resource.getrusage(resource.RUSAGE_SELF)
try:  # this process's own peak: ru_maxrss keeps the parent's across exec on Linux
    peak_kb = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
except (OSError, IndexError):
    peak_kb = usage.ru_maxrss
print(json.dumps({"open": opened, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": peak_kb / 1024,
                  "vector": [float(x) for x in vector]}))
"""


def measure(folder: Path, which: str) -> dict:
    """One fresh process's figures for one model file of `folder`."""
    proc = subprocess.run([sys.executable, "-c", CHILD, str(folder), which], capture_output=True, text=True, cwd=ROOT, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"opening the {which} model in {folder} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="fresh processes per way and model")
    ap.add_argument("--smoke", action="store_true", help="the int8 model, one process per way")
    args = ap.parse_args()
    models = ("int8",) if args.smoke else ("int8", "float")
    if args.smoke:
        args.runs = 1
    header("ONNX sessions: weights beside the graph (as provisioned) vs inside the graph's file", args.smoke)
    import onnx

    from index.embedder import DEFAULT_MODEL, local_model_dir
    from index.onnx_backend import FP32_FILE, INT8_FILE, data_file, onnx_dir_for

    apart = onnx_dir_for(local_model_dir(DEFAULT_MODEL, models_dir()))
    files = {"int8": INT8_FILE, "float": FP32_FILE}
    if not all(data_file(apart / files[m]).is_file() for m in models):
        print(f"{apart}: the weights are not kept beside the graphs; run `newsqa model provision` first")
        return 1
    with tempfile.TemporaryDirectory(prefix="newsqa-onnx-load-") as tmp:
        one_file = Path(tmp) / apart.name
        shutil.copytree(apart, one_file, ignore=shutil.ignore_patterns("*.onnx", "*.data"))
        for m in models:
            onnx.save_model(onnx.load(str(apart / files[m])), str(one_file / files[m]))  # weights back inside the file
        ways = {"weights apart": apart, "one file": one_file}
        got: dict[tuple[str, str], list[dict]] = {(m, w): [] for m in models for w in ways}
        for run in range(args.runs):
            for m in models:
                for way in (list(ways) if run % 2 == 0 else list(ways)[::-1]):  # turns, so drifts touch both ways
                    got[m, way].append(measure(ways[way], m))
    for m in models:
        for way in ways:
            rows = got[m, way]
            print(f"{m:<5} {way:<13}: open median {statistics.median(r['open'] for r in rows):6.2f} s   "
                  f"process CPU {statistics.median(r['cpu'] for r in rows):6.2f} s   "
                  f"peak RSS {statistics.median(r['rss_mb'] for r in rows):6.0f} MB   ({len(rows)} processes)")
        ratio = statistics.median(r["open"] for r in got[m, "one file"]) / statistics.median(r["open"] for r in got[m, "weights apart"])
        same = all(a["vector"] == b["vector"] for a, b in zip(got[m, "one file"], got[m, "weights apart"], strict=True))
        print(f"{m:<5} ratio one file / weights apart, open: {ratio:.1f}x   same vector: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
