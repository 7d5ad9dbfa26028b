"""Shared helpers of the bench scripts: paths, the real model and data, timing and memory figures."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as `python bench/x.py` from anywhere: this checkout's packages

OUT = ROOT / "bench" / "out"
SAMPLE_CORPUS = ROOT / "corpus"
TEST_CORPUS = ROOT / "tests" / "data" / "corpus"
XQUAD_SLICE = ROOT / "tests" / "data" / "xquad-ar-slice"  # 20 passages, shipped (CC BY-SA 4.0)


def shared_dir() -> Path:
    """Data kept outside the repository: NEWSQA_SHARED_DIR, else a `shared` folder beside the checkout.

    Tests and CI point NEWSQA_SHARED_DIR at a folder that does not exist, proving nothing needs it.
    """
    return Path(os.environ.get("NEWSQA_SHARED_DIR") or ROOT.parent / "shared")


def xquad_dir() -> Path:
    """XQuAD-ar: NEWSQA_XQUAD_DIR, else the full set in the shared folder when present, else the shipped slice."""
    explicit = os.environ.get("NEWSQA_XQUAD_DIR")
    if explicit:
        return Path(explicit)
    full = shared_dir() / "data" / "xquad-ar"
    return full if (full / "passages.jsonl").is_file() else XQUAD_SLICE


def models_dir() -> Path:
    """NEWSQA_MODELS_DIR, else the data home's models/ (as Settings resolves it)."""
    from index.home import default_models_dir

    return default_models_dir()


def embedder(backend: str = "auto", threads: int = 0):  # noqa: ANN201
    """The real multilingual-e5-small, loaded now (not inside the first timed call)."""
    from index.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder, configure_threads

    configure_threads(threads)

    e = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir(), backend=backend, threads=threads)
    e.encode_queries(["تحميل"])
    return e


def read_jsonl(path: Path) -> list[dict]:
    """All rows of a JSON-lines file."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def xquad() -> tuple[list[dict], list[dict]]:
    """XQuAD-ar passages and questions; a clear message when the data folder is missing."""
    folder = xquad_dir()
    if not (folder / "passages.jsonl").is_file():
        sys.exit(f"XQuAD-ar data not found in {folder} (set NEWSQA_XQUAD_DIR)")
    return read_jsonl(folder / "passages.jsonl"), read_jsonl(folder / "questions.jsonl")


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def ms_stats(seconds: list[float]) -> str:
    """'p50 X ms, p95 Y ms' of durations in seconds."""
    ms = [s * 1000 for s in seconds]
    return f"p50 {percentile(ms, 50):7.1f} ms  p95 {percentile(ms, 95):7.1f} ms  mean {statistics.fmean(ms):7.1f} ms"


def rss_mb() -> float:
    """Current resident set size of this process, MB."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MB (VmHWM).

    Not getrusage's ru_maxrss: after fork/vfork + exec that keeps the parent's high-water mark,
    so a child started by a big parent would report the parent's memory.
    """
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timer:
    """with Timer() as t: ...; t.seconds."""

    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def quiet() -> None:
    """Keep library progress bars and warnings out of the figures."""
    import logging
    import warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    for name in ("sentence_transformers", "transformers", "bm25s", "faiss"):
        logging.getLogger(name).setLevel(logging.ERROR)


def cpu_kind() -> str:
    """The CPU's name and widest int8 instructions: ONNX Runtime's int8 speed and vectors depend on them."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown (no /proc/cpuinfo)"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "unknown")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    simd = next((f for f in ("avx512_vnni", "avx_vnni", "avx512f", "avx2") if f in flags), "none of avx2/avx512")
    return f"{name}, {simd}"


def header(title: str, smoke: bool) -> None:
    """The first lines every script prints: what, where, how many cores."""
    print(f"== {title}{' (smoke)' if smoke else ''} ==")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    data = xquad_dir()
    shown = f"{data.name} (shipped slice)" if data == XQUAD_SLICE else data.name
    print(f"cores: {os.cpu_count()}  load average: {load}  python: {sys.version.split()[0]}  XQuAD-ar data: {shown}")
    print(f"cpu: {cpu_kind()}")
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print("NOTE: the machine is busy with other processes; absolute timings are inflated, same-run ratios less so")


def real_chunks(passages: list[dict], limit: int) -> list[str]:
    """XQuAD-ar passages cut at sentence ends into chunks of at most ~600 characters."""
    import re

    out: list[str] = []
    for p in passages:
        piece = ""
        for sentence in re.split(r"(?<=[.!؟?])\s+", p["text"].strip()):
            if piece and len(piece) + len(sentence) > 600:
                out.append(piece)
                piece = ""
            piece = f"{piece} {sentence}".strip()
        if piece:
            out.append(piece)
        if len(out) >= limit:
            break
    return out[:limit]


def make_corpus(root: Path, passages: int, sample: bool = True) -> None:
    """Write a real benchmark corpus: test articles (+ sample article and XQuAD-ar passages as JSONL news)."""
    import shutil

    root.mkdir(parents=True, exist_ok=True)
    for f in TEST_CORPUS.iterdir():
        shutil.copy(f, root / f.name)
    if sample:
        for f in SAMPLE_CORPUS.iterdir():
            shutil.copy(f, root / f.name)
    if passages <= 0:
        return
    rows, _ = xquad()
    with open(root / "xquad-ar.jsonl", "w", encoding="utf-8") as out:
        for i, p in enumerate(rows[:passages]):
            record = {"id": p["id"], "title": p["title"].replace("_", " "), "source": "XQuAD-ar",
                      "date": f"2019-{1 + i % 12:02d}-{1 + i % 28:02d}", "text": p["text"]}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
