"""The build embeds chunks in length order (less padding) yet stores each vector at its own row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index.build import BuildOptions, update_index
from index.store import open_current
from tests.conftest import TEST_CORPUS


def test_each_row_holds_the_vector_of_its_own_chunk(built_index: Path, embedder) -> None:  # noqa: ANN001
    v = open_current(built_index)
    rows = list(range(0, v.n_chunks, max(1, v.n_chunks // 6)))
    texts = []
    for row in rows:
        c = v.chunk(row)
        text = v.article(c.article_row).body[c.start : c.end]
        texts.append(f"{c.section}\n{text}" if c.section else text)
    expected = embedder.encode_passages(texts)
    stored = np.asarray(v.vectors[rows])
    # int8 scales activations per batch, so a text encoded in another batch differs slightly: the same
    # vector up to that, and each row's own text is the nearest of all (no row holds another's vector)
    sims = stored @ expected.T
    assert np.diag(sims).min() > 0.98
    assert list(np.argmax(sims, axis=1)) == list(range(len(rows)))


def test_progress_counts_chunks_and_finished_articles(tmp_path: Path, embedder) -> None:  # noqa: ANN001
    ticks = []
    report = update_index(TEST_CORPUS, tmp_path / "index", embedder, BuildOptions(batch_size=2), progress=ticks.append)
    embedding = [t for t in ticks if t.stage == "embedding"]
    assert [t.chunks_done for t in embedding] == sorted(t.chunks_done for t in embedding)
    assert embedding[-1].chunks_done == report.embedded_chunks == report.total_chunks
    assert embedding[-1].articles_done == embedding[-1].articles_total == report.total_articles
    assert all(0 <= t.articles_done <= t.articles_total for t in embedding)
