"""Each backend's vectors are scored with the weights fitted on them: int8 vectors have their own fit."""

from __future__ import annotations

from retrieval.scoring import PARAMS_FILE, params_file_for, shipped_params


def test_float_backends_share_params_and_int8_has_its_own() -> None:
    for backend in (None, "torch", "onnx", "openvino"):
        assert params_file_for(backend) == PARAMS_FILE
    assert params_file_for("onnx-int8") == "params-onnx-int8.json"
    int8, float_ = shipped_params("onnx-int8"), shipped_params("onnx")
    assert int8.raw["command"].startswith("NEWSQA_EMBEDDING_BACKEND=onnx-int8 ")
    assert int8.thresholds != float_.thresholds  # really another fit, not a copy


def test_the_searcher_picks_the_weights_of_the_index_vectors(searcher) -> None:  # noqa: ANN001
    from retrieval.search import Searcher

    assert searcher.version.manifest["model"]["backend"] == "onnx"
    assert searcher.params is shipped_params("onnx", True)
    searcher.version.manifest["model"]["backend"] = "onnx-int8"  # as if the index had been built with int8
    try:
        assert Searcher(searcher.version, searcher.embedder).params is shipped_params("onnx-int8", True)
    finally:
        searcher.version.manifest["model"]["backend"] = "onnx"
