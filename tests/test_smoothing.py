"""Activation smoothing leaves the float model's outputs as they were and brings the int8 copy's closer to them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from index import smoothing
from index.arabic import mostly_arabic


def _two_layer_model(rng: np.random.Generator):  # noqa: ANN202 - onnx ModelProto
    """x → MatMul → Relu → MatMul: two products whose inputs are activations, as in a transformer layer."""
    w1 = rng.normal(size=(16, 32)).astype(np.float32)
    w2 = rng.normal(size=(32, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"], name="layer.0/dense/MatMul"),
         helper.make_node("Relu", ["h"], ["r"], name="relu"),
         helper.make_node("MatMul", ["r", "w2"], ["y"], name="layer.1/dense/MatMul")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 8])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, x: np.ndarray) -> np.ndarray:  # noqa: ANN001
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _activations(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.normal(size=(n, 16)).astype(np.float32)
    x[:, 3] *= 60.0  # one outlier channel, as LayerNorm outputs have
    return x


def _maxima(model, x: np.ndarray) -> dict[str, np.ndarray]:  # noqa: ANN001
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    _, r = session.run(None, {"x": x})
    return {"x": np.abs(x).max(axis=0), "r": np.abs(r).max(axis=0)}


def _int8(model, tmp: Path, name: str):  # noqa: ANN001, ANN202
    src, dst = tmp / f"{name}.onnx", tmp / f"{name}-int8.onnx"
    onnx.save(model, str(src))
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
    return onnx.load(str(dst))


def test_smoothing_keeps_the_float_outputs_and_shrinks_the_int8_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    plain = _two_layer_model(rng)
    calibration, x = _activations(rng, 64), _activations(rng, 256)
    smoothed = onnx.ModelProto()
    smoothed.CopyFrom(plain)
    assert smoothing.smooth(smoothed, _maxima(plain, calibration), skip=lambda name: False) == 2
    assert sum(n.op_type == "Mul" for n in smoothed.graph.node) == 2  # a Mul in front of each product
    want = _run(plain, x)
    np.testing.assert_allclose(_run(smoothed, x), want, rtol=1e-4, atol=1e-3)  # the same function in float

    error_plain = np.abs(_run(_int8(plain, tmp_path, "plain"), x) - want).mean()
    error_smoothed = np.abs(_run(_int8(smoothed, tmp_path, "smoothed"), x) - want).mean()
    assert error_smoothed < 0.6 * error_plain  # the outlier no longer takes the int8 range of every channel


def test_skipped_products_are_left_as_they_are() -> None:
    rng = np.random.default_rng(3)
    model = _two_layer_model(rng)
    before = numpy_helper.to_array(model.graph.initializer[1]).copy()
    assert smoothing.smooth(model, _maxima(model, _activations(rng, 16)), skip=lambda name: name.startswith("layer.1/")) == 1
    np.testing.assert_array_equal(numpy_helper.to_array(model.graph.initializer[1]), before)  # w2: the skipped one
    assert [n.op_type for n in model.graph.node] == ["Mul", "MatMul", "Relu", "MatMul"]


def test_the_shipped_calibration_texts_are_prompted_arabic_passages_and_english_queries() -> None:
    texts = smoothing.calibration_texts()
    passages = [t for t in texts if t.startswith("passage: ")]
    queries = [t for t in texts if t.startswith("query: ")]
    assert len(passages) + len(queries) == len(texts) and passages and queries
    assert sum(mostly_arabic(t) for t in passages) >= 0.9 * len(passages)
    assert not any(mostly_arabic(t) for t in queries)
