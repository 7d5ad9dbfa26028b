"""CPU encoding backends side by side: throughput of torch vs ONNX vs ONNX int8, and what each costs in quality.

Throughput: the same real chunk texts (XQuAD-ar passages cut into ≤600-character chunks)
encoded as passages by each backend in the same run; ratio = backend chunks/s ÷ torch chunks/s.
Quality: dense-only retrieval of the gold passage on XQuAD-ar (240 passages, 1190 questions),
MRR@10 and recall@1 computed here, with passages and questions encoded by the same backend
(the `newsqa eval` command reports the fused pipeline; this isolates the encoder).

    python bench/onnx_speed.py                # all 240 passages and 1190 questions (~10 min on 2 cores)
    python bench/onnx_speed.py --export       # first write <models>/multilingual-e5-small-onnx (~2 min, once)
    python bench/onnx_speed.py --smoke        # 3 passages, 8 of their questions, 4 chunks
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, embedder, header, models_dir, quiet, real_chunks, xquad  # noqa: E402

BACKENDS = ("torch", "onnx", "onnx-int8")


def mrr_at_10(pvecs: np.ndarray, pids: list[str], qvecs: np.ndarray, gold: list[str]) -> tuple[float, float]:
    """MRR@10 and recall@1 of the gold passage, ranking passages by cosine."""
    scores = qvecs @ pvecs.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    rr, r1 = [], []
    for row, g in zip(top, gold):
        ranked = [pids[i] for i in row]
        rr.append(1 / (ranked.index(g) + 1) if g in ranked else 0.0)
        r1.append(float(ranked[0] == g))
    return float(np.mean(rr)), float(np.mean(r1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="3 passages, 8 of their questions, 4 chunks")
    ap.add_argument("--chunks", type=int, default=200, help="chunks timed per backend")
    ap.add_argument("--export", action="store_true", help="export the ONNX folder first if it is missing")
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    args = ap.parse_args()
    quiet()
    header("encoding backends: throughput vs torch, XQuAD-ar dense MRR@10", args.smoke)
    from index.embedder import DEFAULT_MODEL, local_model_dir
    from index.onnx_backend import FP32_FILE, export_onnx, onnx_dir_for

    onnx_dir = onnx_dir_for(local_model_dir(DEFAULT_MODEL, models_dir()))
    if args.export and not (onnx_dir / FP32_FILE).is_file():
        with Timer() as t:
            export_onnx(local_model_dir(DEFAULT_MODEL, models_dir()), onnx_dir)
        print(f"exported ONNX (fp32 + int8) to {onnx_dir} in {t.seconds:.0f}s")
    passages, questions = xquad()
    if args.smoke:
        passages = passages[:3]
        args.chunks = 4
    keep = {p["id"] for p in passages}
    questions = [q for q in questions if q["passage_id"] in keep][: 8 if args.smoke else None]
    chunks = real_chunks(passages, args.chunks)
    print(f"throughput set: {len(chunks)} real chunks (mean {np.mean([len(c) for c in chunks]):.0f} chars); "
          f"quality set: {len(passages)} passages, {len(questions)} questions")
    results: dict[str, dict[str, float]] = {}
    for backend in args.backends:
        if backend != "torch" and not (onnx_dir / FP32_FILE).is_file():
            print(f"{backend:10s} SKIPPED: no ONNX export at {onnx_dir} (run with --export, or `newsqa model export-onnx`)")
            continue
        emb = embedder(backend)
        emb.encode_passages(chunks[:4])
        with Timer() as t:
            emb.encode_passages(chunks)
        speed = len(chunks) / t.seconds
        pvecs = emb.encode_passages([p["text"] for p in passages])
        qvecs = emb.encode_queries([q["question"] for q in questions])
        mrr, r1 = mrr_at_10(pvecs, [p["id"] for p in passages], qvecs, [q["passage_id"] for q in questions])
        results[backend] = {"speed": speed, "mrr": mrr, "r1": r1}
        base = results.get("torch")
        vs = f"  ratio {speed / base['speed']:.2f}x torch, MRR@10 {mrr - base['mrr']:+.4f}" if base and backend != "torch" else ""
        print(f"{backend:10s} {speed:6.2f} chunks/s   MRR@10 {mrr:.4f}   recall@1 {r1:.4f}{vs}", flush=True)
        del emb
    if "torch" in results:
        base = results["torch"]
        print("\nsummary (baseline: torch, same run)")
        print("backend     chunks/s  x torch   MRR@10   ΔMRR@10   recall@1")
        for name, r in results.items():
            print(f"{name:10s} {r['speed']:8.2f}  {r['speed'] / base['speed']:6.2f}x  {r['mrr']:.4f}  {r['mrr'] - base['mrr']:+.4f}   {r['r1']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
