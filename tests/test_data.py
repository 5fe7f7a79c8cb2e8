"""Corpora and sentences of chapters 01 and 02 (selfattention.data)."""

import re

import pytest

from selfattention.data import (
    ATTENTION_SENTENCE,
    BANK_MONEY_SENTENCE,
    BANK_RIVER_SENTENCE,
    bank_sentences,
    python_docs_corpus,
)


def test_python_docs_corpus_is_deterministic_and_non_empty():
    from pydoc_data.topics import topics

    text = python_docs_corpus()
    assert text == python_docs_corpus()
    assert len(text) > 100_000
    # Sorted topic order: the first topic's text opens the corpus.
    assert text.startswith(topics[min(topics)].strip())
    assert python_docs_corpus(1000) == text[:1000]


def test_python_docs_corpus_rejects_bad_max_chars():
    with pytest.raises(ValueError, match="max_chars must be a positive int or None, got 0"):
        python_docs_corpus(0)
    with pytest.raises(ValueError, match="got 1.5"):
        python_docs_corpus(1.5)


def test_bank_sentences_are_deterministic_and_balanced():
    pairs = bank_sentences(40, seed=3)
    assert pairs == bank_sentences(40, seed=3)
    assert pairs != bank_sentences(40, seed=4)
    assert len(pairs) == 80
    assert [sense for _, sense in pairs] == ["river", "money"] * 40
    with_bank = [s for s, _ in pairs if " bank " in f" {s} "]
    assert len(with_bank) == 40  # half of each sense uses the word
    for sentence, _ in pairs:
        assert sentence.endswith(" .") and sentence == sentence.lower() and "  " not in sentence


def test_bank_sentences_rejects_bad_count():
    with pytest.raises(ValueError, match="n_per_sense must be a positive int, got 0"):
        bank_sentences(0)


def test_example_sentences():
    words = re.findall(r"\w+|[^\w\s]", ATTENTION_SENTENCE)
    assert words.index("it") > words.index("cup") > words.index("water")
    for sentence in (BANK_RIVER_SENTENCE, BANK_MONEY_SENTENCE):
        assert "bank" in sentence.lower().split() or "bank." in sentence.lower().split()
