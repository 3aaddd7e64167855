"""Relevance for RetrieveMemoryRecords: Okapi BM25 over the words of the records a search selects.

AWS ranks by the semantic similarity of embeddings, which an emulator cannot reproduce; a lexical
score lets tests predict the order exactly. docs/emulator.md states the formula.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping

# Lucene's defaults.
K1 = 1.2
B = 0.75

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Case-folded runs of Unicode letters, digits and underscores."""
    return _WORD.findall(text.casefold())


def bm25_scores(query: str, documents: Mapping[str, str]) -> dict[str, float]:
    """{document id: score} for the documents sharing at least one word with the query; the corpus
    statistics (document count, frequencies, average length) are those of ``documents``."""
    terms = set(words(query))
    if not terms or not documents:
        return {}
    counts = {doc_id: Counter(words(text)) for doc_id, text in documents.items()}
    lengths = {doc_id: sum(count.values()) for doc_id, count in counts.items()}
    average_length = sum(lengths.values()) / len(documents)
    document_frequency = Counter(term for count in counts.values() for term in terms if term in count)
    idf = {
        term: math.log(1 + (len(documents) - frequency + 0.5) / (frequency + 0.5))
        for term, frequency in document_frequency.items()
    }
    scores: dict[str, float] = {}
    for doc_id, count in counts.items():
        matched = [term for term in idf if term in count]
        if not matched:
            continue
        # A document holding a query word has words, so the average length is above zero.
        norm = K1 * (1 - B + B * lengths[doc_id] / average_length)
        scores[doc_id] = sum(idf[term] * count[term] * (K1 + 1) / (count[term] + norm) for term in matched)
    return scores
