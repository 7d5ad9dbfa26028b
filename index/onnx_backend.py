"""ONNX Runtime encoding of a sentence-transformers BERT-style model: export once, then encode faster on CPU.

sentence-transformers' own `backend="onnx"` needs `optimum.onnxruntime` (the `optimum-onnx`
package), whose only release pins transformers<4.58; this project runs transformers 5.x. So the
export uses torch's ONNX exporter, int8 quantisation uses onnxruntime's dynamic quantiser, and
encoding is tokenizer → ONNX Runtime → mean pooling → L2 normalisation, the same modules the
sentence-transformers folder declares (checked at load).
"""

from __future__ import annotations

import json
import re
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from index.errors import ModelNotFoundError

log = logging.getLogger(__name__)

ONNX_SUFFIX = "-onnx"
FP32_FILE = "onnx/model.onnx"
INT8_FILE = "onnx/model_qint8.onnx"
RECORD_FILE = "newsqa_onnx.json"
DATA_SUFFIX = ".data"  # a model file's weights beside its graph (store_external)
# How the int8 copy is made, recorded beside it: a copy made another way is re-quantised by `newsqa model provision`.
# 2: 7-bit weights (reduce_range). CPUs without VNNI (AVX2 only) multiply uint8 activations by int8 weights in
# pairs summed into 16 bits, which 8-bit weights can overflow: on such a CPU the 8-bit copy's question vectors
# were .976 from the float model's at worst (cosine, 300 XQuAD-ar questions), the 7-bit copy's .992.
# 3: as 2, after activation smoothing (index/smoothing.py): the int8 vectors' distance from the float model's halved.
# It is also encoded one text per call (OnnxEncoder.per_call), so an int8 vector never depends on its batch.
INT8_RECIPE = 3
COPIED = (
    "config.json", "config_sentence_transformers.json", "modules.json", "sentence_bert_config.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentencepiece.bpe.model",
    "1_Pooling", "2_Normalize",
)


def onnx_dir_for(model_dir: Path) -> Path:
    """Where the exported ONNX copy of a model folder lives: beside it, `<name>-onnx`."""
    return model_dir.parent / f"{model_dir.name}{ONNX_SUFFIX}"


def onnx_folder(model_dir: Path) -> Path:
    """The folder the ONNX backends read: the model folder itself when it is an export, else its copy beside it."""
    return model_dir if (model_dir / "onnx").is_dir() else onnx_dir_for(model_dir)


def export_onnx(model_dir: Path, out_dir: Path | None = None, quantize: bool = True) -> Path:
    """Export a local sentence-transformers folder to ONNX (and an int8 copy); returns the folder.

    Run once (`newsqa model export-onnx`), never at import or load time; the hub is not needed.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    out_dir = out_dir or onnx_dir_for(model_dir)
    _check_modules(model_dir)
    (out_dir / "onnx").mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = model_dir / name
        if src.is_dir():
            shutil.copytree(src, out_dir / name, dirs_exist_ok=True)
        elif src.is_file():
            shutil.copy2(src, out_dir / name)
    st = SentenceTransformer(str(model_dir), device="cpu", model_kwargs={"attn_implementation": "eager"})
    bert = st[0].auto_model.eval()  # eager attention exports as plain ops ONNX Runtime can fuse

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    sample = st.tokenizer(["passage: مثال قصير", "query: سؤال"], padding=True, return_tensors="pt")
    fp32 = out_dir / FP32_FILE
    with torch.no_grad():
        torch.onnx.export(
            Encoder(),
            (sample["input_ids"], sample["attention_mask"]),
            str(fp32),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                          "last_hidden_state": {0: "batch", 1: "seq"}},
            opset_version=17,
            dynamo=False,
        )
    optimize_graph(fp32, bert.config)
    if quantize:
        quantize_int8(fp32, out_dir / INT8_FILE)
        store_external(out_dir / INT8_FILE)
    record: dict[str, object] = {"source": str(model_dir), "files": [FP32_FILE] + ([INT8_FILE] if quantize else [])}
    if quantize:
        record["int8_recipe"] = INT8_RECIPE
    _write_record(out_dir, record)
    return out_dir


def _write_record(folder: Path, record: dict) -> None:
    (folder / RECORD_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")


def _read_record(folder: Path) -> dict:
    try:
        record = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def int8_recipe(folder: Path) -> int | None:
    """The recipe the folder's int8 copy was made with (None: no copy, or one from before recipes were recorded)."""
    if not (folder / INT8_FILE).is_file():
        return None
    recipe = _read_record(folder).get("int8_recipe")
    return recipe if isinstance(recipe, int) else None


def int8_outdated(folder: Path) -> bool:
    """Whether the folder holds an int8 copy made by another recipe than today's (or by one never recorded)."""
    return (folder / INT8_FILE).is_file() and int8_recipe(folder) != INT8_RECIPE


def requantize(folder: Path) -> Path:
    """Make the int8 copy again from the folder's float model with today's recipe (seconds; no export)."""
    quantize_int8(folder / FP32_FILE, folder / INT8_FILE)
    store_external(folder / INT8_FILE)
    record = _read_record(folder)
    record["files"] = sorted({*record.get("files", [FP32_FILE]), INT8_FILE})
    record["int8_recipe"] = INT8_RECIPE
    _write_record(folder, record)
    return folder


def data_file(path: Path) -> Path:
    """Where a model file's weights are kept beside its graph (`model.onnx` → `model.onnx.data`)."""
    return path.with_name(path.name + DATA_SUFFIX)


def store_external(path: Path) -> bool:
    """Move a model file's weights out of its graph into `<file>.data` beside it, in place; the same model.

    ONNX Runtime then reads the weights as they lie instead of parsing them out of one ~450 MB protobuf message: a
    process opens the model ~2 s sooner and peaks at about half the memory (bench/onnx_load.py). Returns whether
    anything changed (False: the weights were apart already).
    """
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        return False
    save_external(model, path)
    return True


def save_external(model, path: Path) -> None:  # noqa: ANN001 - an onnx ModelProto
    """Write `model` to `path` (a file of its own weights, or none yet) with its weights in `<file>.data` beside it.

    Only the single file's own graph is replaced, last: until then a crash leaves whatever was at `path` whole, since
    no graph there names the data file.
    """
    import onnx

    data = data_file(path)
    tmp_graph = path.with_name(path.name + ".tmp")
    data.unlink(missing_ok=True)  # one left by an earlier export: onnx would append to it
    onnx.save_model(model, str(tmp_graph), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name, size_threshold=1024)
    if path.exists():  # onnx writes the data owner-only: readable by whoever could read the model
        data.chmod(path.stat().st_mode & 0o777)
    tmp_graph.replace(path)


def optimize_graph(path: Path, config) -> None:  # noqa: ANN001 - a transformers config
    """Fuse attention, GELU and layer norms with ONNX Runtime's transformer optimiser (in place, weights apart)."""
    from onnxruntime.transformers import optimizer

    model = optimizer.optimize_model(
        str(path), model_type="bert", num_heads=int(config.num_attention_heads), hidden_size=int(config.hidden_size)
    )
    log.info("ONNX fusions: %s", model.get_fused_operator_statistics())
    save_external(model.model, path)  # written once, its weights apart (store_external)


def quantize_int8(src: Path, dst: Path) -> Path:
    """Dynamic int8 quantisation of the encoder's matrix products (activations quantised at run time).

    Each product's input is first smoothed (index/smoothing.py: activation outliers moved into the weights,
    calibrated on the shipped texts with the folder's tokenizer), which halves the int8 vectors' distance from the
    float model's. Kept in float: the word-embedding table (int8 there blurs rare words and hurts English
    questions over Arabic text most) and the last layer, whose output is the vector itself. Weights take 7 bits
    (reduce_range), so CPUs without VNNI do not overflow their 16-bit pair sums.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from index import smoothing

    last = set(last_layer_nodes(src))
    model = onnx.load(str(src))
    tokenizer = TextTokenizer(src.parent.parent, 512)
    names = sorted({n.input[0] for n in smoothing.targets(model, last.__contains__)})
    maxima = smoothing.activation_maxima(model, tokenizer, smoothing.calibration_texts(), names)
    count = smoothing.smooth(model, maxima, last.__contains__)
    smoothed = dst.with_name(dst.stem + "_smoothed.onnx")
    save_external(model, smoothed)
    del model
    try:
        quantize_dynamic(
            str(smoothed), str(dst), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
            op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=sorted(last),
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # fused ops defeat shape inference
        )
    finally:
        smoothed.unlink(missing_ok=True)
        data_file(smoothed).unlink(missing_ok=True)
    log.info("int8 copy: %d matrix products smoothed (alpha %.2f) and quantised", count, smoothing.ALPHA)
    return dst


def last_layer_nodes(path: Path) -> list[str]:
    """Names of the last encoder layer's nodes: its fused Attention and its MatMuls (`.../layer.N/...`)."""
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    attention = [n.name for n in nodes if n.op_type == "Attention"]
    layers = [int(m.group(1)) for n in nodes if (m := re.search(r"layer\.(\d+)/", n.name))]
    if not layers:
        return attention[-1:]
    last = f"layer.{max(layers)}/"
    return attention[-1:] + [n.name for n in nodes if last in n.name]


def _check_modules(model_dir: Path) -> None:
    """Only Transformer → mean Pooling → Normalize folders are reproduced exactly here."""
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        raise ModelNotFoundError(f"{model_dir}: no modules.json, not a sentence-transformers folder")
    types = [m["type"].rsplit(".", 1)[-1] for m in json.loads(modules_file.read_text(encoding="utf-8"))]
    if types[:2] != ["Transformer", "Pooling"] or any(t not in ("Transformer", "Pooling", "Normalize") for t in types):
        raise ModelNotFoundError(f"{model_dir}: modules {types} are not Transformer→Pooling(→Normalize); use the torch backend")
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    if not pooling.get("pooling_mode_mean_tokens") or any(
        pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
    ):
        raise ModelNotFoundError(f"{model_dir}: only mean pooling is supported by the ONNX backend; use torch")


class TextTokenizer:
    """A model folder's fast tokenizer read straight from its tokenizer.json by the `tokenizers` library.

    transformers' AutoTokenizer wraps the same object and gives the same ids, but importing it pulls in transformers
    and torch: ~7 s of every process that encodes (a one-shot `newsqa ask`, each Ray worker) on a 2-core machine.
    A folder without tokenizer.json (a slow, sentencepiece-only tokenizer) still goes through AutoTokenizer.
    """

    def __init__(self, folder: Path, max_length: int) -> None:
        file = folder / "tokenizer.json"
        self.max_length = max_length
        self._auto = None
        if not file.is_file():
            from transformers import AutoTokenizer

            self._auto = AutoTokenizer.from_pretrained(str(folder))
            return
        from tokenizers import Tokenizer

        try:
            config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
        tok = Tokenizer.from_file(str(file))
        pad_token = str(config.get("pad_token") or "<pad>")
        pad_id = tok.token_to_id(pad_token)
        if pad_id is None:
            raise ModelNotFoundError(f"{file}: its pad token {pad_token!r} is not in its vocabulary")
        tok.enable_truncation(max_length=max_length)  # as transformers' truncation=True: specials counted in the length
        tok.enable_padding(pad_id=pad_id, pad_token=pad_token)  # to the batch's longest, on the right
        self._tok = tok

    def __call__(self, texts: Sequence[str], offsets: bool = False) -> dict[str, np.ndarray]:
        """input_ids and attention_mask (int64, padded to the longest), and offset_mapping (characters) when asked."""
        if self._auto is not None:
            enc = self._auto(list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="np",
                             return_offsets_mapping=offsets)
            return {k: np.asarray(v) for k, v in enc.items()}
        got = self._tok.encode_batch(list(texts))
        out: dict[str, np.ndarray] = {
            "input_ids": np.array([e.ids for e in got], dtype=np.int64).reshape(len(got), -1),
            "attention_mask": np.array([e.attention_mask for e in got], dtype=np.int64).reshape(len(got), -1),
        }
        if offsets:
            out["offset_mapping"] = np.array([e.offsets for e in got], dtype=np.int64).reshape(len(got), -1, 2)
        return out


class OnnxEncoder:
    """Mean-pooled, normalised sentence vectors from an exported ONNX model folder."""

    def __init__(self, folder: Path, int8: bool = False, threads: int = 0, max_seq_length: int = 512) -> None:
        import onnxruntime as ort

        file = folder / (INT8_FILE if int8 else FP32_FILE)
        if not file.is_file():
            raise ModelNotFoundError(
                f"no ONNX model at {file}: export it once with `newsqa model export-onnx` "
                f"(writes {folder} from the local model folder), or set NEWSQA_EMBEDDING_BACKEND=torch"
            )
        _check_modules(folder)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads sleep instead of spinning: a spinning pool steals the cores the
        # FAISS and BM25 stages of the same question need next.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(file), opts, providers=["CPUExecutionProvider"])
        config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        self.max_seq_length = min(max_seq_length, int(config.get("max_seq_length") or max_seq_length))
        self.tokenizer = TextTokenizer(folder, self.max_seq_length)  # the tokenizer sentence-transformers uses
        self.normalize = "2_Normalize" in {p.name for p in folder.iterdir()}
        prompts = json.loads((folder / "config_sentence_transformers.json").read_text(encoding="utf-8")).get("prompts", {})
        self.prompts: dict[str, str] = dict(prompts or {})
        self.dim = int(json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))["word_embedding_dimension"])
        self.file = file
        self.folder = folder
        # int8 quantises activations with one scale per call: one text per call makes each vector its own text's
        # alone, whatever else is encoded with it, and (no padding) it is faster too: 194 news chunks 7.9 → 6.5 s,
        # 1 - cosine to the float model .0017 → .0012 (bench/RESULTS.md)
        self.per_call = 1 if int8 else 0

    def token_states(self, texts: Sequence[str], batch_size: int = 32):  # noqa: ANN201 - Iterator of tuples
        """(rows, hidden, attention mask, character offsets) per batch, longest texts first: for late chunking."""
        batch_size = self.per_call or batch_size
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            enc = self.tokenizer([texts[i] for i in rows], offsets=True)
            ids = enc["input_ids"].astype(np.int64)
            mask = enc["attention_mask"].astype(np.int64)
            (hidden,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            yield rows, hidden, mask, enc["offset_mapping"]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Vectors for already-prompted texts, longest first in batches (less padding; int8: one by one), in input order."""
        batch_size = self.per_call or batch_size
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            enc = self.tokenizer([texts[i] for i in rows])
            ids = enc["input_ids"].astype(np.int64)
            mask = enc["attention_mask"].astype(np.int64)
            (hidden,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            if self.normalize:
                pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[rows] = pooled
        return out
