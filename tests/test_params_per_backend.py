"""Each backend's vectors are scored with the weights fitted on them: int8 vectors have their own fit."""

from __future__ import annotations

from retrieval.scoring import PARAMS_FILE, params_file_for, shipped_params


def test_float_backends_share_params_and_int8_has_its_own() -> None:
    for backend in (None, "torch", "onnx", "openvino"):
        assert params_file_for(backend) == PARAMS_FILE
    assert params_file_for("onnx-int8") == "params-onnx-int8.json"
    int8, float_ = shipped_params("onnx-int8"), shipped_params("onnx")
    assert int8.raw["command"].startswith("NEWSQA_EMBEDDING_BACKEND=onnx-int8 ")
    assert int8.thresholds != float_.thresholds or int8.raw["passage"] != float_.raw["passage"]  # another fit, not a copy


def test_each_shipped_file_names_the_command_that_fits_it_again() -> None:
    for backend, lexicon in (("onnx", True), ("onnx", False), ("onnx-int8", True), ("onnx-int8", False)):
        name = params_file_for(backend, lexicon)
        command = shipped_params(backend, lexicon).raw["command"]
        assert command.startswith(f"NEWSQA_EMBEDDING_BACKEND={backend} "), (name, command)
        assert ("NEWSQA_LEXICON=false" in command) is (not lexicon)
        assert command.endswith(f"python bench/fit_scoring.py --out retrieval/{name}"), (name, command)


def test_the_searcher_picks_the_weights_of_the_index_vectors(searcher) -> None:  # noqa: ANN001
    from retrieval.search import Searcher

    assert searcher.version.manifest["model"]["backend"] == "onnx-int8"  # the default
    assert searcher.params is shipped_params("onnx-int8", True)
    searcher.version.manifest["model"]["backend"] = "onnx"  # as if the index had been built with float vectors
    try:
        assert Searcher(searcher.version, searcher.embedder).params is shipped_params("onnx", True)
    finally:
        searcher.version.manifest["model"]["backend"] = "onnx-int8"
