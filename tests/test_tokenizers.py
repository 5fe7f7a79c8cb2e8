"""CharTokenizer and BPETokenizer (chapter 01): round trips, determinism, compression, errors."""

import warnings
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfattention.data import python_docs_corpus
from selfattention.tokenizers import BPETokenizer, CharTokenizer, split_chunks

TRAIN_TEXT = python_docs_corpus(20_000)
BPE = BPETokenizer.train(TRAIN_TEXT, 400, progress=False)
CHARS = CharTokenizer.train(TRAIN_TEXT)


def naive_bpe_merges(text: str, n_merges: int) -> list[tuple[int, int]]:
    """Textbook BPE, recounting every pair after every merge: the reference for the incremental one."""
    counts = Counter(split_chunks(text))
    seqs = {chunk: list(chunk.encode("utf-8")) for chunk in counts}
    merges = []
    for step in range(n_merges):
        pairs = Counter()
        for chunk, seq in seqs.items():
            for pair in zip(seq, seq[1:]):
                pairs[pair] += counts[chunk]
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], -p[0], -p[1]))
        merges.append(best)
        for chunk, seq in seqs.items():
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and (seq[i], seq[i + 1]) == best:
                    out.append(256 + step)
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            seqs[chunk] = out
    return merges


# --- CharTokenizer ---

@given(st.text(alphabet=sorted(set(TRAIN_TEXT)), max_size=200))
def test_char_round_trip_over_the_training_alphabet(text):
    ids = CHARS.encode(text)
    assert len(ids) == len(text)
    assert CHARS.decode(ids) == text


def test_char_vocabulary_is_the_sorted_characters():
    tok = CharTokenizer.train("banana")
    assert tok.vocab == ["a", "b", "n"]
    assert tok.encode("nab") == [2, 0, 1]
    assert len(tok) == tok.vocab_size == 3
    assert tok.tokens("ban") == ["b", "a", "n"]


def test_char_errors_name_the_value():
    tok = CharTokenizer.train("banana")
    with pytest.raises(ValueError, match=r"character 'z' at position 3 is not in the vocabulary of 3 characters"):
        tok.encode("banz")
    with pytest.raises(ValueError, match=r"text is empty \(got ''\)"):
        CharTokenizer.train("")
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        CharTokenizer.train(b"abc")
    with pytest.raises(ValueError, match=r"id 7 at position 1 is not in \[0, 3\)"):
        tok.decode([0, 7])
    with pytest.raises(ValueError, match=r"id -1 at position 0 is not in \[0, 3\)"):
        tok.decode([-1])
    with pytest.raises(TypeError, match="id 1.0 at position 0 is not an integer"):
        tok.decode([1.0])
    with pytest.raises(TypeError, match="text must be a str, got list"):
        tok.encode(["b"])


def test_decode_accepts_numpy_and_torch_ids():
    import numpy as np
    import torch

    ids = BPE.encode("The assert statement")
    assert BPE.decode(np.array(ids)) == BPE.decode(torch.tensor(ids)) == "The assert statement"
    assert CHARS.decode(np.array(CHARS.encode("abc"))) == "abc"


# --- BPETokenizer ---

@settings(max_examples=200)
@given(st.text(alphabet=sorted(set(TRAIN_TEXT)), max_size=300))
def test_bpe_round_trip_over_the_training_alphabet(text):
    assert BPE.decode(BPE.encode(text)) == text


@given(st.text(max_size=100))
def test_bpe_round_trip_over_any_text(text):
    # Byte-level: characters never seen in training still encode, and come back.
    assert BPE.decode(BPE.encode(text)) == text


@given(st.text(max_size=200))
def test_chunks_join_back_to_the_text(text):
    assert "".join(split_chunks(text)) == text


def test_bpe_training_is_deterministic():
    again = BPETokenizer.train(TRAIN_TEXT, 400, progress=False)
    assert again.merges == BPE.merges
    assert again.vocab == BPE.vocab
    assert len(BPE.merges) == 400 - 256 == len(set(BPE.merges))


def test_incremental_counts_equal_the_textbook_algorithm_on_the_corpus():
    assert BPETokenizer.train(TRAIN_TEXT[:5000], 256 + 60, progress=False).merges == naive_bpe_merges(
        TRAIN_TEXT[:5000], 60)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab c\n", min_size=1, max_size=80), st.integers(0, 30))
def test_incremental_counts_equal_the_textbook_algorithm_on_small_texts(text, n_merges):
    # Tiny alphabets force overlapping pairs ("aaa"), ties and early exhaustion.
    expected = naive_bpe_merges(text, n_merges)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tok = BPETokenizer.train(text, 256 + n_merges, progress=False)
    assert tok.merges == expected
    # A warning exactly when the text ran out of pairs before the vocabulary was full.
    assert len(caught) == (len(expected) < n_merges)


def test_ties_go_to_the_smallest_pair():
    # "ab" and "cd" occur equally often, in either order of the text; (97, 98) < (99, 100).
    assert BPETokenizer.train("ab\ncd", 257, progress=False).merges == [(97, 98)]
    assert BPETokenizer.train("cd\nab", 257, progress=False).merges == [(97, 98)]


def test_fewer_merges_are_a_prefix_of_more():
    assert BPETokenizer.train(TRAIN_TEXT, 300, progress=False).merges == BPE.merges[:44]


def test_merges_reduce_the_token_count_on_the_corpus():
    sample = python_docs_corpus()[-30_000:]  # text not used in training
    counts = [len(BPETokenizer(BPE.merges[:k]).encode(sample)) for k in (0, 16, 64, 144)]
    assert counts[0] == len(sample.encode("utf-8"))
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == 4
    assert counts[-1] < 0.6 * counts[0]


def test_encode_gives_training_segmentation_and_tokens():
    tok = BPETokenizer.train("low lower lowest", 259, progress=False)
    assert [tok.vocab[i] for i in tok.merges[0]] == [b"l", b"o"]
    assert tok.tokens("low") == ["low"]
    assert tok.tokens(" lowest") == [" low", "e", "s", "t"]
    assert BPE.tokens("ï") == ["\\xc3", "\\xaf"]


def test_training_stops_early_with_a_warning():
    with pytest.warns(UserWarning, match="no pair left to merge after 1 merges; the vocabulary has 257 ids"):
        tok = BPETokenizer.train("ab", 300, progress=False)
    assert tok.vocab_size == 257


def test_progress_bar(capsys):
    BPETokenizer.train("abc abd", 258, progress=True)
    assert "BPE merges" in capsys.readouterr().err
    BPETokenizer.train("abc abd", 258)  # 2 merges: no bar by default
    assert "BPE merges" not in capsys.readouterr().err


def test_bpe_errors_name_the_value():
    with pytest.raises(ValueError, match=r"vocab_size=100 is smaller than the byte alphabet \(256 ids\)"):
        BPETokenizer.train("hello", 100)
    with pytest.raises(ValueError, match=r"text is empty \(got ''\)"):
        BPETokenizer.train("", 300)
    with pytest.raises(TypeError, match="vocab_size must be an int, got float"):
        BPETokenizer.train("hello", 300.0)
    with pytest.raises(TypeError, match="text must be a str, got list"):
        BPETokenizer.train(["hello"], 300)
    with pytest.raises(ValueError, match=r"id 400 at position 2 is not in \[0, 400\)"):
        BPE.decode([1, 2, 400])
    with pytest.raises(ValueError, match=r"merge \(256, 1\) refers to an id not in \[0, 256\)"):
        BPETokenizer([(256, 1)])
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        BPE.encode(b"x")
