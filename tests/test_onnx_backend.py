"""The ONNX Runtime backend: export, int8 quantisation and encoding agree with sentence-transformers (torch).

A tiny randomly initialised BERT with e5's real tokenizer stands in for the model so the export
runs in seconds; the real e5 export is measured by bench/onnx_speed.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from index.embedder import SentenceTransformerEmbedder, encode_questions, local_model_dir
from index.errors import ModelNotFoundError
from index.onnx_backend import (FP32_FILE, INT8_FILE, INT8_RECIPE, OnnxEncoder, data_file, export_onnx, int8_recipe,
                                onnx_dir_for, store_external)

TEXTS = ["كيف يستخدم تنظيم داعش الإنترنت؟", "رفع البنك المركزي سعر الفائدة ربع نقطة مئوية.", "short English text", "ب" * 300]


@pytest.fixture(scope="module")
def tiny_model(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT sentence-transformers folder using e5's tokenizer and prompts."""
    import torch
    from transformers import BertConfig, BertModel

    e5 = local_model_dir("intfloat/multilingual-e5-small", models_dir)
    root = tmp_path_factory.mktemp("models") / "tiny-e5"
    torch.manual_seed(0)
    config = BertConfig(vocab_size=250037, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, pad_token_id=0)
    BertModel(config).save_pretrained(root)
    for name in ("tokenizer.json", "tokenizer_config.json", "modules.json", "sentence_bert_config.json",
                 "config_sentence_transformers.json", "2_Normalize"):
        src = e5 / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    (root / "1_Pooling").mkdir()
    pooling = json.loads((e5 / "1_Pooling" / "config.json").read_text())
    pooling["word_embedding_dimension"] = 32
    (root / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    export_onnx(root)
    return root


def copy_models(tiny_model: Path, models: Path) -> None:
    """A writable copy of the tiny model and its ONNX export, for tests that change the export's record."""
    shutil.copytree(tiny_model, models / "tiny-e5")
    shutil.copytree(onnx_dir_for(tiny_model), models / "tiny-e5-onnx")


def test_export_writes_fp32_and_int8_beside_the_model(tiny_model: Path) -> None:
    folder = onnx_dir_for(tiny_model)
    assert folder == tiny_model.parent / "tiny-e5-onnx"
    assert (folder / FP32_FILE).is_file() and (folder / INT8_FILE).is_file()
    # each file's weights beside its graph, so ONNX Runtime maps them instead of parsing one big protobuf message
    for name in (FP32_FILE, INT8_FILE):
        assert data_file(folder / name).stat().st_size > 100 * (folder / name).stat().st_size, name
    assert data_file(folder / INT8_FILE).stat().st_size < data_file(folder / FP32_FILE).stat().st_size


def test_a_copy_exported_as_one_file_is_split_by_provision_and_gives_the_same_vectors(tiny_model: Path, tmp_path: Path) -> None:
    import onnx

    from index.provision import provision_model

    models = tmp_path / "models"
    copy_models(tiny_model, models)
    folder = models / "tiny-e5-onnx"
    for name in (FP32_FILE, INT8_FILE):  # as exports were written before: the weights inside the graph's file
        onnx.save_model(onnx.load(str(folder / name)), str(folder / name))
        data_file(folder / name).unlink()
    before = {name: OnnxEncoder(folder, int8=name == INT8_FILE).encode(TEXTS) for name in (FP32_FILE, INT8_FILE)}

    said: list[str] = []
    provision_model(models / "tiny-e5", say=said.append)
    assert any("moved the weights of onnx/model.onnx, onnx/model_qint8.onnx" in line for line in said), said
    for name in (FP32_FILE, INT8_FILE):
        assert data_file(folder / name).is_file() and (folder / name).stat().st_size < 1_000_000
        assert data_file(folder / name).stat().st_mode & 0o777 == (folder / name).stat().st_mode & 0o777  # not owner-only
        np.testing.assert_array_equal(OnnxEncoder(folder, int8=name == INT8_FILE).encode(TEXTS), before[name])
        assert not store_external(folder / name)  # split already: nothing to do
    said.clear()
    provision_model(models / "tiny-e5", say=said.append)
    assert said[-1] == f"ONNX copy already at {folder}"


def test_exporting_again_over_a_copy_rewrites_its_data_files_instead_of_growing_them(tiny_model: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    copy_models(tiny_model, models)
    folder = models / "tiny-e5-onnx"
    sizes = {name: data_file(folder / name).stat().st_size for name in (FP32_FILE, INT8_FILE)}
    before = OnnxEncoder(folder).encode(TEXTS)
    export_onnx(models / "tiny-e5")  # the data files from the first export are still there
    assert {name: data_file(folder / name).stat().st_size for name in (FP32_FILE, INT8_FILE)} == sizes
    np.testing.assert_array_equal(OnnxEncoder(folder).encode(TEXTS), before)


def test_onnx_vectors_match_torch_and_int8_stays_close(tiny_model: Path) -> None:
    torch_e = SentenceTransformerEmbedder("tiny-e5", models_dir=tiny_model.parent, backend="torch")
    torch_e.model  # noqa: B018 - loads e5's prompts from the copied config
    assert torch_e._prompts["query"] == "query: "
    ref_q, ref_p = torch_e.encode_queries(TEXTS), torch_e.encode_passages(TEXTS, batch_size=2)
    for backend, tol in (("onnx", 1e-4), ("onnx-int8", 0.05)):
        e = SentenceTransformerEmbedder("tiny-e5", models_dir=tiny_model.parent, backend=backend)
        assert e.dim == 32
        q, p = e.encode_queries(TEXTS), e.encode_passages(TEXTS, batch_size=2)
        assert q.shape == (len(TEXTS), 32) and q.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)
        cos = np.minimum((q * ref_q).sum(1), (p * ref_p).sum(1))
        assert cos.min() >= 1 - tol, f"{backend}: cosine to torch {cos.min():.5f}"


def test_missing_export_says_how_to_make_it(tmp_path: Path, models_dir: Path) -> None:
    (tmp_path / "multilingual-e5-small").symlink_to(local_model_dir("intfloat/multilingual-e5-small", models_dir))
    e = SentenceTransformerEmbedder("intfloat/multilingual-e5-small", models_dir=tmp_path, backend="onnx-int8")
    with pytest.raises(ModelNotFoundError, match="export-onnx"):
        e.encode_queries(["سؤال"])


def test_int8_weights_take_seven_bits_so_cpus_without_vnni_do_not_overflow(tiny_model: Path) -> None:
    """AVX2 sums pairs of uint8 × int8 products in 16 bits: 8-bit weights can overflow them, 7-bit ones cannot."""
    import onnx
    from onnx import numpy_helper

    folder = onnx_dir_for(tiny_model)
    assert int8_recipe(folder) == INT8_RECIPE
    weights = [numpy_helper.to_array(t) for t in onnx.load(str(folder / INT8_FILE)).graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and t.dims and np.prod(t.dims) > 64]
    assert weights, "no int8 weight matrices in the int8 copy"
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in weights) <= 64


def test_an_int8_copy_from_an_earlier_recipe_is_not_used_until_provision_remakes_it(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.cli import cmd_model_provision
    from bot.settings import Settings

    models = tmp_path / "models"
    copy_models(tiny_model, models)
    folder = models / "tiny-e5-onnx"
    record = json.loads((folder / "newsqa_onnx.json").read_text())
    del record["int8_recipe"]  # as every export before recipes were recorded
    (folder / "newsqa_onnx.json").write_text(json.dumps(record))
    assert int8_recipe(folder) is None
    arabic = ["كم قاربا تضرر في فيضانات الميناء؟", "ما قدرة محطة الطاقة الشمسية؟"]

    stale = SentenceTransformerEmbedder("tiny-e5", models_dir=models, backend="onnx")
    with caplog.at_level("WARNING", logger="index.embedder"):
        assert stale.onnx_arabic_questions is None
    assert "earlier recipe" in caplog.text and "newsqa model provision" in caplog.text
    np.testing.assert_array_equal(encode_questions(stale, arabic), stale.encode_queries(arabic))

    assert cmd_model_provision(Settings(), models / "tiny-e5", force=False, onnx=True, words=0) == 0
    assert int8_recipe(folder) == INT8_RECIPE
    fresh = SentenceTransformerEmbedder("tiny-e5", models_dir=models, backend="onnx")
    assert fresh.onnx_arabic_questions is not None
    assert not np.array_equal(encode_questions(fresh, arabic), fresh.encode_queries(arabic))  # the int8 model's vectors
    assert fresh.cache_key != stale.cache_key


def test_an_int8_index_records_its_recipe_and_rebuilds_when_the_copy_changes(tiny_model: Path, tmp_path: Path) -> None:
    from bench.corpusgen import write_corpus
    from index.build import BuildOptions, update_index
    from index.store import open_current

    models, corpus, index_dir = tmp_path / "models", tmp_path / "corpus", tmp_path / "index"
    copy_models(tiny_model, models)
    write_corpus(corpus, 4)

    def embedder() -> SentenceTransformerEmbedder:
        return SentenceTransformerEmbedder("tiny-e5", models_dir=models, backend="onnx-int8")

    update_index(corpus, index_dir, embedder(), BuildOptions())
    assert open_current(index_dir).manifest["model"]["int8_recipe"] == INT8_RECIPE
    assert not update_index(corpus, index_dir, embedder(), BuildOptions()).switched  # nothing changed: nothing done
    record_file = models / "tiny-e5-onnx" / "newsqa_onnx.json"
    record = json.loads(record_file.read_text())
    record["int8_recipe"] = INT8_RECIPE + 1  # a copy made by another recipe
    record_file.write_text(json.dumps(record))
    report = update_index(corpus, index_dir, embedder(), BuildOptions())
    assert report.full_rebuild_reason == f"int8 quantisation recipe changed ({INT8_RECIPE} → {INT8_RECIPE + 1})"
    assert report.embedded_chunks == report.total_chunks > 0


def test_the_tokenizer_read_directly_gives_transformers_ids_padding_truncation_and_offsets(models_dir: Path) -> None:
    from transformers import AutoTokenizer

    from index.onnx_backend import TextTokenizer

    folder = local_model_dir("intfloat/multilingual-e5-small", models_dir)
    texts = ["passage: " + "رفع البنك المركزي سعر الفائدة، " * 120, *TEXTS, "", "🙂\u200f x\u200b", "query: How many boats?"]
    ours, auto = TextTokenizer(folder, 512), AutoTokenizer.from_pretrained(str(folder))
    got = ours(texts, offsets=True)
    want = auto(texts, padding=True, truncation=True, max_length=512, return_tensors="np", return_offsets_mapping=True)
    assert got["input_ids"].shape == (len(texts), 512)  # the long one truncated to 512, the rest padded to it
    for key in ("input_ids", "attention_mask", "offset_mapping"):
        assert np.array_equal(got[key], want[key]), key
    short = ours(texts[1:3])
    assert short["input_ids"].shape[1] < 40 and short["attention_mask"][:, -1].tolist().count(0) == 1  # padded to the longer


def test_encoding_on_onnx_imports_neither_torch_nor_transformers(models_dir: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from index.embedder import SentenceTransformerEmbedder;"
        f"e = SentenceTransformerEmbedder('intfloat/multilingual-e5-small', models_dir=Path({str(models_dir)!r}), backend='onnx');"
        "v = e.encode_questions(['كم عدد متابعي حساب شامي ويتنس؟', 'How many boats?']);"
        "print(v.shape, 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-3:] == ["384)", "False", "False"], proc.stdout
