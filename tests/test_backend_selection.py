"""Which backend and device encode: onnx-int8 by default where it can, then onnx, then torch; a missing GPU falls back."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from bot.settings import Settings
from index.build import BuildOptions, update_index
from index.embedder import (
    DEFAULT_BACKEND,
    DEFAULT_MODEL,
    SentenceTransformerEmbedder,
    local_model_dir,
    resolve_backend,
    resolve_device,
)
from index.onnx_backend import FP32_FILE, INT8_FILE, INT8_RECIPE, RECORD_FILE, onnx_dir_for
from index.store import open_current
from tests.conftest import TEST_CORPUS


def test_auto_means_onnx_int8_where_the_export_is_there_and_torch_where_not(models_dir: Path, tmp_path: Path) -> None:
    model = local_model_dir(DEFAULT_MODEL, models_dir)
    assert DEFAULT_BACKEND == "auto" and Settings().embedding_backend == "auto"
    assert resolve_backend("auto", str(model), "cpu") == "onnx-int8"
    assert resolve_backend("torch", str(model), "cpu") == "torch"  # an explicit choice is kept
    assert resolve_backend("onnx-int8", str(model), "cpu") == "onnx-int8"
    assert resolve_backend("auto", str(model), "cuda") == "torch"  # a GPU runs torch in fp16

    bare = tmp_path / "models" / "bare-model"  # the same model folder, never exported
    shutil.copytree(model, bare, ignore=shutil.ignore_patterns("*.safetensors"))
    assert resolve_backend("auto", str(bare), "cpu") == "torch"
    assert resolve_backend("auto", "org/not-on-disk", "cpu") == "torch"

    default = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir)
    assert default.backend == "onnx-int8"
    vec = default.encode_queries(["كم عدد الضحايا؟"])
    assert vec.shape == (1, 384) and abs(float(np.linalg.norm(vec)) - 1) < 1e-4


def test_auto_takes_the_float_onnx_model_while_the_int8_copy_is_of_an_earlier_recipe(models_dir: Path, tmp_path: Path) -> None:
    source = local_model_dir(DEFAULT_MODEL, models_dir)
    model = tmp_path / "models" / source.name  # the model and its export, linked, with a record of their own
    model.mkdir(parents=True)
    for item in source.iterdir():
        (model / item.name).symlink_to(item)
    export = onnx_dir_for(model)
    (export / "onnx").mkdir(parents=True)
    for name in (FP32_FILE, INT8_FILE):
        (export / name).symlink_to(onnx_dir_for(source) / name)
    (export / RECORD_FILE).write_text(json.dumps({"int8_recipe": INT8_RECIPE}), encoding="utf-8")
    assert resolve_backend("auto", str(model), "cpu") == "onnx-int8"
    (export / RECORD_FILE).write_text(json.dumps({"int8_recipe": INT8_RECIPE - 1}), encoding="utf-8")
    assert resolve_backend("auto", str(model), "cpu") == "onnx"  # float until `newsqa model provision` re-quantises
    (export / INT8_FILE).unlink()
    assert resolve_backend("auto", str(model), "cpu") == "torch"  # an export without its int8 copy is incomplete


def test_a_missing_gpu_falls_back_to_the_cpu_in_one_line(models_dir: Path, caplog) -> None:  # noqa: ANN001
    import torch

    caplog.set_level(logging.WARNING, logger="index.embedder")
    got = resolve_device("cuda")
    if torch.cuda.is_available():  # a GPU machine: the GPU is used, nothing to warn about
        assert got == "cuda" and not caplog.records
        return
    assert got == "cpu"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "NEWSQA_DEVICE=cuda" in warnings[0].getMessage() and "CPU" in warnings[0].getMessage()
    assert resolve_device("cpu") == "cpu"

    e = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir, device="cuda")
    assert e.device == "cpu" and not e.on_gpu and e.batch_size_for(32) == 32
    assert e.backend == "onnx-int8"  # once on the CPU, the CPU's fast backend
    assert e.encode_passages(["نص قصير"]).shape == (1, 384)


def test_the_manifest_records_the_backend_and_a_backend_change_rebuilds(tmp_path: Path, embedder, models_dir: Path) -> None:  # noqa: ANN001
    corpus = tmp_path / "corpus"
    shutil.copytree(TEST_CORPUS, corpus)
    first = update_index(corpus, tmp_path / "idx", embedder, BuildOptions(sentence_vectors=True))
    version = open_current(tmp_path / "idx")
    assert version.manifest["model"]["backend"] == "onnx-int8"
    assert version.manifest["model"]["int8_recipe"] == INT8_RECIPE
    assert version.manifest["sentences"]["method"] == "separate"  # late chunking is opt-in
    version.close()
    torch_embedder = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir, backend="torch")
    again = update_index(corpus, tmp_path / "idx", torch_embedder, BuildOptions(sentence_vectors=True))
    assert again.switched and again.full_rebuild_reason == "embedding backend changed (onnx-int8 → torch)"
    assert again.embedded_chunks == first.embedded_chunks
    assert open_current(tmp_path / "idx").manifest["model"]["backend"] == "torch"


class _SmallGpuModel:
    """Stands in for a sentence-transformers model on a GPU too small for batches over 8 (no GPU exists here)."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def encode(self, texts, batch_size, **kwargs):  # noqa: ANN001, ANN003, ANN201
        import torch

        self.batches.append(batch_size)
        if batch_size > 8:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return np.eye(len(texts), 4, dtype=np.float32)


def test_a_gpu_that_runs_out_of_memory_halves_the_batch_and_keeps_it_halved(models_dir: Path, caplog) -> None:  # noqa: ANN001
    caplog.set_level(logging.WARNING, logger="index.embedder")
    e = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir, device="cuda")
    e._device, e._backend, e._model = "cuda", "torch", _SmallGpuModel()  # what resolve_device gives on a GPU
    assert e.on_gpu and e.batch_size_for(32) == 512 and e.batch_size_for(1024) == 1024
    got = e.encode_passages(["أ", "ب", "ج"], e.batch_size_for(32))
    assert got.shape == (3, 4) and e._model.batches == [512, 256, 128, 64, 32, 16, 8]
    assert [r.getMessage() for r in caplog.records][-1] == "the GPU ran out of memory: encoding in batches of 8 from now on"
    assert e.batch_size_for(32) == 8  # the build asks for what fitted, not 512 again
    e.encode_queries(["سؤال"], 512)
    assert e._model.batches[-1] == 8


def test_out_of_memory_on_the_cpu_is_not_retried(models_dir: Path) -> None:
    import pytest
    import torch

    e = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir, backend="torch")
    e._model = _SmallGpuModel()
    with pytest.raises(torch.OutOfMemoryError):
        e.encode_passages(["أ"], 32)
    assert e._model.batches == [32]


def test_a_gpu_with_no_room_for_the_model_is_not_reported_as_a_missing_model(models_dir: Path, monkeypatch) -> None:  # noqa: ANN001
    import pytest
    import sentence_transformers
    import torch

    from index.errors import GpuMemoryError

    def full_gpu(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - what SentenceTransformer(..., device="cuda") raises then
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 MiB")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", full_gpu)
    e = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir, backend="torch")
    e._device = "cuda"
    with pytest.raises(GpuMemoryError, match=r"the GPU \(cuda\) has no room for .*NEWSQA_DEVICE=cpu"):
        e.encode_passages(["نص"])


def test_on_a_gpu_the_model_is_read_in_fp16_directly(models_dir: Path, monkeypatch) -> None:  # noqa: ANN001
    import numpy as np
    import sentence_transformers
    import torch

    real = sentence_transformers.SentenceTransformer
    asked: list[dict] = []

    def on_cpu_instead(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the real model, read as a GPU load asks
        asked.append(dict(kwargs))
        return real(*args, **{**kwargs, "device": "cpu"})

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", on_cpu_instead)
    e = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir, backend="torch")
    e._device = "cuda"
    e.load()
    assert asked[0]["model_kwargs"] == {"dtype": torch.float16} and asked[0]["device"] == "cuda"
    assert {p.dtype for p in e._model.parameters()} == {torch.float16}  # never a float32 copy of the weights
    ref = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir, backend="torch")
    texts = ["أعلن البنك المركزي رفع سعر الفائدة.", "The harbour flooded."]
    cos = np.sum(e.encode_passages(texts) * ref.encode_passages(texts), axis=1)
    assert cos.min() > 0.999


def test_late_chunking_on_a_gpu_short_of_memory_halves_its_batch_with_the_same_vectors(models_dir: Path, caplog) -> None:  # noqa: ANN001
    import torch

    texts = [f"الفقرة رقم {i}: قالت الوزارة إن الأمطار ستستمر. وأضافت أن الطرق مغلقة." for i in range(12)]
    spans = [[(0, t.index(".") + 1), (t.index(".") + 2, len(t))] for t in texts]
    e = SentenceTransformerEmbedder(DEFAULT_MODEL, models_dir=models_dir, backend="torch")
    want, want_units = e.encode_passages_with_spans(texts, spans, 32)

    class SmallGpu(torch.nn.Module):  # the real transformer, refusing batches over 4 as a small GPU would
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner, self.batches = inner, []

        def forward(self, **kwargs):  # noqa: ANN003, ANN201
            self.batches.append(int(kwargs["input_ids"].shape[0]))
            if self.batches[-1] > 4:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
            return self.inner(**kwargs)

    small = SmallGpu(e.model[0].auto_model)
    e.model[0].model = small  # what the module's auto_model returns
    e._device = "cuda"  # the model stays on the CPU; only the halving logic sees a GPU
    caplog.set_level(logging.WARNING, logger="index.embedder")
    got, units = e.encode_passages_with_spans(texts, spans, 32)
    assert small.batches == [12, 12, 8, 4, 4, 4] and e.batch_size_for(32) == 4  # 32 → 16 → 8 → 4, then kept
    assert np.allclose(got, want, atol=1e-5) and all(np.allclose(a, b, atol=1e-5) for a, b in zip(units, want_units))
    assert "the GPU ran out of memory: encoding in batches of 4 from now on" in caplog.text


def test_the_bot_encodes_questions_on_one_thread_per_model_unless_told(models_dir: Path, monkeypatch) -> None:  # noqa: ANN001
    from bot.telegram import SERVING_THREADS, serving_embedder

    monkeypatch.setenv("NEWSQA_MODELS_DIR", str(models_dir))
    monkeypatch.delenv("NEWSQA_THREADS", raising=False)
    served = serving_embedder(Settings(_env_file=None))
    assert SERVING_THREADS == 1 and served.threads == 1
    arabic = served.onnx_arabic_questions  # the int8 model Arabic questions go to, and the float one for the rest
    assert arabic is not None and arabic.session.get_session_options().intra_op_num_threads == 1
    assert served.onnx.session.get_session_options().intra_op_num_threads == 1
    monkeypatch.setenv("NEWSQA_THREADS", "2")
    told = serving_embedder(Settings(_env_file=None))
    assert told.threads == 2 and told.onnx.session.get_session_options().intra_op_num_threads == 2
