"""Activation smoothing before int8 quantisation: move activation outliers into the weights, exactly.

Dynamic int8 quantisation scales each matrix product's input with one number per call, so a few channels with
large values (LayerNorm outputs, GELU outputs) leave the others a handful of levels. SmoothQuant (Xiao et al.,
2022) divides each input channel by s_k and multiplies the weight's row k by s_k, which leaves the float product
unchanged, with s_k = max|x_k|^alpha / max|W_k|^(1-alpha) measured on calibration texts. Here the division is a
Mul node in front of each product (BERT's LayerNorm outputs also feed the residual path, so it cannot be folded
into the LayerNorm). On XQuAD-ar passages, one minus the int8 vectors' cosine to the float model's fell from
.0041 to .0019 (mean) at alpha .7 (bench/RESULTS.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ALPHA = 0.7  # the share of each outlier moved into the weights: .3-.9 screened by cosine to the float vectors
CLIP = (1e-2, 1e2)  # bounds on a channel's scale: a dead channel (max ~0) must not blow up its weight row
CALIBRATION_FILE = Path(__file__).with_name("int8_calibration.jsonl")  # shipped texts: prompts included


def calibration_texts(path: Path = CALIBRATION_FILE) -> list[str]:
    """The shipped calibration texts (Arabic news passages from the sample corpora, English prose as queries)."""
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def targets(model, skip: Callable[[str], bool]) -> list:  # noqa: ANN001 - an onnx ModelProto
    """The matrix products to smooth: MatMul/Attention nodes whose weight is a stored tensor, less those skipped."""
    weights = {t.name for t in model.graph.initializer}
    return [n for n in model.graph.node
            if n.op_type in ("MatMul", "Attention") and len(n.input) > 1 and n.input[1] in weights and not skip(n.name)]


def activation_maxima(model, tokenize: Callable[[Sequence[str]], dict], texts: Sequence[str],
                      names: Sequence[str]) -> dict[str, np.ndarray]:  # noqa: ANN001 - an onnx ModelProto
    """Each named tensor's largest absolute value per channel over the texts, encoded one at a time (no padding)."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in names:
        probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the probed tensors must survive
    session = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    maxima: dict[str, np.ndarray] = {}
    for text in texts:
        enc = tokenize([text])
        outs = session.run(list(names), {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
        for name, value in zip(names, outs):
            peak = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            maxima[name] = np.maximum(maxima[name], peak) if name in maxima else peak
    return maxima


def smooth(model, maxima: dict[str, np.ndarray], skip: Callable[[str], bool], alpha: float = ALPHA) -> int:  # noqa: ANN001
    """Rescale `model` in place (float outputs unchanged); returns how many products were smoothed."""
    from onnx import helper, numpy_helper

    weights = {t.name: t for t in model.graph.initializer}
    chosen = {n.name for n in targets(model, skip)}  # names: protobuf gives new wrappers per visit
    nodes = []
    for node in model.graph.node:
        if node.name in chosen:
            w = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
            x_max = np.maximum(maxima[node.input[0]], 1e-5)
            w_max = np.maximum(np.abs(w).max(axis=1), 1e-5)
            scale = np.clip(x_max**alpha / w_max ** (1 - alpha), *CLIP).astype(np.float32)
            weights[node.input[1]].CopyFrom(numpy_helper.from_array(w * scale[:, None], node.input[1]))
            name = node.name.replace("/", "_") + "_smooth_scale"
            model.graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), name))
            scaled = f"{node.input[0]}_{name}"
            nodes.append(helper.make_node("Mul", [node.input[0], name], [scaled], name=name + "_Mul"))
            node.input[0] = scaled
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return len(chosen)
