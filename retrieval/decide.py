"""The answer / no-answer decision: a calibrated probability that the corpus answers, and a threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retrieval.scoring import LinearModel


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to answer, with the probability it rests on."""

    answer: bool
    probability: float


def decide(model: LinearModel, features: np.ndarray, threshold: float) -> Decision:
    """Answer when the fitted probability that the best passage answers reaches the threshold."""
    p = float(model.probs(features.reshape(1, -1))[0])
    return Decision(p >= threshold, p)
