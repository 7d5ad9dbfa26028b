"""Passage scoring: documented features of each candidate → one fitted probability.

The weights are not set by hand: `bench/fit_scoring.py` fits them (logistic regression on half A
of the development sets) and writes `retrieval/params.json`, which this module reads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from index.errors import NewsqaError
from retrieval.candidates import Candidate
from retrieval.evidence import SpanEvidence
from retrieval.query import QType, Query, TermWeights

PARAMS_FILE = "params.json"
PARAMS_FORMAT = 2  # 2: one decision model per script (Arabic questions, questions in another script)
SCRIPTS = ("arabic", "other")

# Each passage feature, in the order the fitted weights use, with what it measures.
PASSAGE_FEATURES = {
    "fused": "fusion's score (0..1): where the lexical and dense sides agree",
    "dense": "cosine of the question with the chunk",
    "unit": "cosine of the question with the chunk's best sentence/clause",
    "dense_gap": "how far the chunk's cosine is below the best candidate's",
    "unit_gap": "how far its best sentence's cosine is below the best candidate's",
    "lex": "BM25 score relative to the best BM25 score",
    "lex_rr": "1 / (1 + BM25 rank)",
    "dense_rr": "1 / (1 + dense rank)",
    "word_cov": "share of the question's idf weight whose terms the chunk holds",
    "known_share": "share of the question's word weight the corpus knows (≈0 for English over Arabic)",
    "lex_x_known": "lex × known_share: BM25 counts only when the words are the corpus's",
    "cov_x_known": "word_cov × known_share",
    "figure": "a how-many question and a chunk stating a figure",
    "date": "a when question and a chunk stating a year or a date",
    "figure_near": "a how-many question and a figure within 3 words of one of its words (\"جمع 17700 متتبع\")",
    "lead": "the article's first chunk (news leads carry the main facts)",
    "second_x_known": "cosine of the question with the chunk by the second encoder (index/second_encoder.py: USE multilingual) × known_share",
    "second_gap_x_known": "how far that cosine is below the best candidate's, × known_share",
    "second_x_cross": "the second encoder's cosine × (1 − known_share): questions in another language lean on meaning",
    "second_gap_x_cross": "how far it is below the best candidate's, × (1 − known_share)",
}
# The answer/no-answer decision reads the best candidate after scoring.
DECISION_FEATURES = {
    "logit": "log-odds of the best passage from the passage model",
    "dense": "cosine of the question with the best passage",
    "unit": "cosine with the best passage's best sentence",
    "word_cov": "share of the question's idf weight the best passage holds",
    "known_share": "share of the question's word weight the corpus knows",
    "arabic": "the question is in Arabic script",
    "cov_x_known": "word_cov × known_share",
    "missing": "idf (scaled 0..1) of the rarest known question word the best passage lacks: an entity it never names",
    "peak": "best passage's cosine minus the median of the dense candidates': off-topic questions find nothing that stands out",
    "unit_peak": "its best sentence's cosine minus the median best-sentence cosine of the scored candidates",
}


class ParamsError(NewsqaError):
    """The fitted parameters file is missing, malformed, or does not match this code's features."""


@dataclass(frozen=True, slots=True)
class LinearModel:
    """A fitted logistic model: probability = sigmoid(weights · features + bias)."""

    names: tuple[str, ...]
    weights: np.ndarray
    bias: float

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Log-odds for each row of features."""
        return np.asarray(x, dtype=np.float64) @ self.weights + self.bias

    def probs(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for each row of features."""
        return 1.0 / (1.0 + np.exp(-self.logits(x)))

    @classmethod
    def from_json(cls, data: dict, expected: Sequence[str], what: str) -> LinearModel:
        """Read one model, refusing weights fitted for other features."""
        names = tuple(data.get("features", ()))
        if names != tuple(expected):
            raise ParamsError(f"{PARAMS_FILE}: {what} features {list(names)} differ from this code's {list(expected)}; re-fit with bench/fit_scoring.py")
        return cls(names, np.array([float(data["weights"][n]) for n in names]), float(data["bias"]))


@dataclass(frozen=True, slots=True)
class Params:
    """Every fitted parameter of the answer pipeline."""

    passage: LinearModel
    decisions: dict[str, LinearModel]  # per script: "arabic" questions, "other" (English: meaning and translated terms)
    threshold: float  # answer when the decision probability reaches this (where no script has its own)
    thresholds: dict[str, float]  # the same per script
    quote: LinearModel
    raw: dict

    def decision(self, arabic: bool) -> LinearModel:
        """The decision model for a question in Arabic script, or in another."""
        return self.decisions["arabic" if arabic else "other"]


def params_file_for(backend: str | None, lexicon: bool = True) -> str:
    """The shipped weights for vectors of this backend: `params-<backend>.json` when fitted apart, else params.json.

    torch, onnx and openvino give the float model's vectors and share params.json; int8 vectors are not
    the same numbers, so onnx-int8 has its own fit (bench/fit_scoring.py with NEWSQA_EMBEDDING_BACKEND set).
    An index without a lexicon (built before it, or with NEWSQA_LEXICON=false) cannot translate an English
    question's words, so its questions are scored with the `-nolexicon` fit, made without that evidence.
    """
    suffix = "" if lexicon else "-nolexicon"
    for name in ((f"params-{backend}{suffix}.json",) if backend else ()) + (f"params{suffix}.json",):
        if resources.files("retrieval").joinpath(name).is_file():
            return name
    return PARAMS_FILE


def load_params(text: str | None = None, file: str = PARAMS_FILE) -> Params:
    """The shipped parameters (or those in `text`), checked against this code's features."""
    from retrieval.quote import QUOTE_FEATURES

    try:
        raw = json.loads(text if text is not None else resources.files("retrieval").joinpath(file).read_text(encoding="utf-8"))
        if raw.get("format") != PARAMS_FORMAT:
            raise ParamsError(f"{PARAMS_FILE}: format {raw.get('format')} (this code reads {PARAMS_FORMAT})")
        return Params(
            passage=LinearModel.from_json(raw["passage"], list(PASSAGE_FEATURES), "passage"),
            decisions={name: LinearModel.from_json(raw["decision"][name], list(DECISION_FEATURES), f"decision ({name})") for name in SCRIPTS},
            threshold=float(raw["decision"]["threshold"]),
            thresholds={k: float(v) for k, v in raw["decision"].get("thresholds", {}).items()},
            quote=LinearModel.from_json(raw["quote"], list(QUOTE_FEATURES), "quote"),
            raw=raw,
        )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ParamsError(f"{PARAMS_FILE}: cannot read the fitted parameters ({exc})") from None


@lru_cache(maxsize=8)
def shipped_params(backend: str | None = None, lexicon: bool = True) -> Params:
    """The parameters shipped with the package for this backend's vectors (and lexicon or not), read once."""
    return load_params(file=params_file_for(backend, lexicon))


def passage_features(
    cands: Sequence[Candidate], evidence: Sequence[SpanEvidence], leads: Sequence[bool], query: Query, weights: TermWeights,
    second: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """One row of PASSAGE_FEATURES per candidate (`second`: each one's second-encoder cosine)."""
    dense_vals = [c.dense_score for c in cands if c.dense_score is not None]
    floor = min(dense_vals) if dense_vals else 0.0
    dense = [c.dense_score if c.dense_score is not None else floor for c in cands]
    unit = [c.unit_score if c.unit_score is not None else d for c, d in zip(cands, dense)]
    d_max, u_max = max(dense, default=0.0), max(unit, default=0.0)
    lex_max = max((c.lexical_score for c in cands if c.lexical_score is not None), default=0.0) or 1.0
    known = weights.known_share
    s_max = float(max(second, default=0.0))
    rows = []
    for c, ev, lead, d, u, s in zip(cands, evidence, leads, dense, unit, second):
        lex = (c.lexical_score or 0.0) / lex_max
        cov = weights.coverage(set(ev.terms))
        rows.append(
            [
                c.fused,
                d,
                u,
                d_max - d,
                u_max - u,
                lex,
                1.0 / (1 + c.lexical_rank) if c.lexical_rank is not None else 0.0,
                1.0 / (1 + c.dense_rank) if c.dense_rank is not None else 0.0,
                cov,
                known,
                lex * known,
                cov * known,
                float(query.qtype is QType.HOW_MANY and ev.figure),
                float(query.qtype is QType.WHEN and ev.date),
                float(query.qtype is QType.HOW_MANY and weights.matches(ev.near_figure)),
                float(lead),
                float(s) * known,
                (s_max - float(s)) * known,
                float(s) * (1 - known),
                (s_max - float(s)) * (1 - known),
            ]
        )
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(PASSAGE_FEATURES))


def decision_features(
    top: Candidate,
    top_row: Sequence[float] | np.ndarray,
    evidence: SpanEvidence,
    query: Query,
    weights: TermWeights,
    dense_median: float | None,
    unit_median: float | None = None,
) -> np.ndarray:
    """DECISION_FEATURES of the best candidate (`top_row` is its passage-feature row)."""
    f = dict(zip(PASSAGE_FEATURES, top_row))
    missing = max((w for t, w in weights.weights.items() if w > 0 and t not in evidence.terms), default=0.0) / (weights.max_idf or 1.0)
    p = min(max(top.prob if top.prob is not None else 0.5, 1e-6), 1 - 1e-6)
    return np.array(
        [
            math.log(p / (1 - p)),
            f["dense"],
            f["unit"],
            f["word_cov"],
            weights.known_share,
            float(query.arabic),
            f["word_cov"] * weights.known_share,
            missing,
            f["dense"] - dense_median if dense_median is not None else 0.0,
            f["unit"] - unit_median if unit_median is not None else 0.0,
        ]
    )
