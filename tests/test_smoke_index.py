"""The shared index loads and knows the sample article."""

from tests.conftest import SAMPLE_ARTICLE_TITLE


def test_shared_index_holds_sample_and_test_articles(searcher) -> None:
    titles = {searcher.version.article(r).title for r in range(searcher.version.n_articles)}
    assert SAMPLE_ARTICLE_TITLE in titles
    assert searcher.version.n_articles == 6
