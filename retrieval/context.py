"""Follow-up questions: searched together with the words they lean on, the previous answer's articles preferred.

A follow-up such as `ومتى حدث ذلك؟` or `and who arrested him?` names nothing of its own: the earlier
question's content words find the topic, and the follow-up's own words (`حدث`, `arrested`) decide
between the article already quoted and another one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection

from index.arabic import STOPWORDS, normalize, term_spans
from retrieval.candidates import Candidate
from retrieval.query import Query, analyse
from retrieval.types import Context

# Words that point back at something said before (normalised): pronouns, demonstratives, "there".
REFERENCE_WORDS = frozenset(
    normalize(w)
    for w in (
        "هو هي هم هما هن ذلك ذاك هذا هذه تلك هؤلاء اولئك أولئك هناك هنالك عنه عنها عنهم منه منها منهم فيه فيها "
        "فيهم له لها لهم به بها بهم اليه إليه اليها إليها عليه عليها عليهم معه معها"
    ).split()
) | frozenset(
    "he she it they him her them his hers its their theirs this that these those there".split()
)
CONJUNCTIONS = ("و", "ف")  # written onto the next word: ومتى, فمن


def bare_word(norm: str) -> str:
    """A normalised word without a leading و/ف when what remains is a function or reference word (ومتى → متى)."""
    if len(norm) > 1 and norm[0] in CONJUNCTIONS and (norm[1:] in STOPWORDS or norm[1:] in REFERENCE_WORDS):
        return norm[1:]
    return norm


def own_text(question: str) -> str:
    """The follow-up's own words: leading conjunctions dropped from question words, reference words left out."""
    out: list[str] = []
    for word in question.split():
        norm = normalize(word)
        bare = bare_word(norm)
        if bare in REFERENCE_WORDS or normalize(word.strip("?؟!.,،:;")) in REFERENCE_WORDS:
            continue
        out.append(word[1:] if bare != norm and word[:1] in CONJUNCTIONS else word)
    return " ".join(out)


def content_words(question: str) -> tuple[str, ...]:
    """The question's content words as written (function, question and reference words left out), to carry on."""
    text = own_text(question)
    words = dict.fromkeys(text[t.start : t.end] for t in term_spans(text) if bare_word(normalize(text[t.start : t.end])) not in STOPWORDS)
    return tuple(words)


def expand(question: str, context: Context) -> Query:
    """The follow-up analysed with the carried words appended; what it asks (its type) stays the follow-up's."""
    own = analyse(question)
    query = analyse(" ".join([own_text(question), *context.terms]).strip())
    return dataclasses.replace(query, qtype=own.qtype)


def searched_text(question: str, context: Context | None) -> str:
    """The text a question is searched and embedded as: a follow-up's own words with the carried ones, else itself.

    A caller that embeds questions itself (the bot batches them) embeds this, so a follow-up's vector is ready too.
    """
    return expand(question, context).text if context is not None and context.active else question


def prefer(
    candidates: list[Candidate],
    context_rows: Collection[int],
    own_coverage: Callable[[Candidate], float],
    answers: Callable[[Candidate], bool],
) -> list[Candidate]:
    """Of the scored passages that answer, those matching the follow-up's own words best first, and among
    equals those of the previous answer's articles; the rest keep their order after them.

    The carried words find the topic, but they outnumber the follow-up's own (`وماذا عن الطاقة الشمسية؟`
    after a question about a flood): its own words decide which passage answers it.
    """
    position = {id(c): i for i, c in enumerate(candidates)}
    good = [c for c in candidates if c.prob is not None and answers(c)]
    if not good:
        return candidates
    good.sort(key=lambda c: (-round(own_coverage(c), 6), c.article_row not in context_rows, position[id(c)]))
    chosen = {id(c) for c in good}
    return good + [c for c in candidates if id(c) not in chosen]
