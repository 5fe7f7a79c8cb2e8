"""Tokenizers: text -> integer ids -> text.

Derived in chapter 01, "Tokens and embeddings"
(``notebooks/01_tokens_and_embeddings.ipynb``).

:class:`CharTokenizer` gives every distinct character of its training text one
id.  :class:`BPETokenizer` starts from the 256 byte values and learns merges of
frequent neighbouring pairs: byte-pair encoding (Gage, 1994), as Sennrich et
al. (2016) used it for words and GPT-2 (Radford et al., 2019) on bytes.
"""

from __future__ import annotations

import heapq
import operator
import re
import warnings
from collections import Counter
from typing import Iterable, Sequence

from tqdm import tqdm

__all__ = ["CharTokenizer", "BPETokenizer", "split_chunks"]

# Split text into words, numbers, runs of punctuation and whitespace, each word
# keeping the single space before it (GPT-2's rule, written for Python's `re`).
# Merges never cross a chunk boundary, so " the" and " theory" share " the" but
# no token glues the end of one word to the start of the next.  The classes
# cover every character, so the chunks always join back to the text.
_CHUNK = re.compile(r" ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")

# Above this many merges, training shows a progress bar unless told otherwise.
_PROGRESS_FROM = 100


def split_chunks(text: str) -> list[str]:
    """Pre-tokenize: the pieces BPE merges within (``"".join(split_chunks(t)) == t``).

    Chapter 01, "Byte-pair encoding".
    """
    return _CHUNK.findall(text)


def _check_ids(ids: Iterable[int], size: int, owner: str) -> list[int]:
    """Ids as Python ints (NumPy and torch integers are accepted), each in ``[0, size)``."""
    checked = []
    for position, i in enumerate(ids):
        try:
            i = operator.index(i)
        except TypeError:
            raise TypeError(f"{owner}.decode: id {i!r} at position {position} is not an integer") from None
        if not 0 <= i < size:
            raise ValueError(f"{owner}.decode: id {i!r} at position {position} is not in [0, {size})")
        checked.append(i)
    return checked


class CharTokenizer:
    """One token per character; the vocabulary is the sorted set of characters of the training text.

    Characters that were not in the training text cannot be encoded: ``encode``
    raises a ValueError naming the first one (a byte-level tokenizer such as
    :class:`BPETokenizer` does not have this problem).

    Chapter 01, "Characters as tokens".
    """

    def __init__(self, chars: Sequence[str]):
        chars = sorted(set(chars))
        if not chars:
            raise ValueError("CharTokenizer: the vocabulary is empty (no characters given)")
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError(f"CharTokenizer: every vocabulary entry must be one character, got {chars[:10]!r}")
        self.vocab: list[str] = chars
        self._ids = {c: i for i, c in enumerate(chars)}

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """Build the vocabulary from the characters of ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.train: text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError("CharTokenizer.train: text is empty (got ''); there is nothing to learn a vocabulary from")
        return cls(text)

    @property
    def vocab_size(self) -> int:
        """Number of ids, ``|V|``."""
        return len(self.vocab)

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.encode: text must be a str, got {type(text).__name__}")
        try:
            return [self._ids[c] for c in text]
        except KeyError:
            position, char = next((p, c) for p, c in enumerate(text) if c not in self._ids)
            raise ValueError(f"CharTokenizer.encode: character {char!r} at position {position} is not in the "
                             f"vocabulary of {self.vocab_size} characters seen in training") from None

    def decode(self, ids: Iterable[int]) -> str:
        """The text of a list of ids (the inverse of :meth:`encode`)."""
        return "".join(self.vocab[i] for i in _check_ids(ids, self.vocab_size, "CharTokenizer"))

    def tokens(self, text: str) -> list[str]:
        """The pieces of ``text`` as the tokenizer sees them (here: its characters)."""
        return [self.vocab[i] for i in self.encode(text)]


def _merge(seq: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each occurrence of ``pair`` in ``seq`` by ``new_id``, scanning left to right."""
    out, i, n = [], 0, len(seq)
    while i < n:
        if i + 1 < n and seq[i] == pair[0] and seq[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


class BPETokenizer:
    """Byte-level byte-pair encoding.

    Why bytes as the base alphabet, rather than the characters of the corpus:
    every string is a sequence of UTF-8 bytes, so the 256 byte values encode
    any text, including characters never seen in training (no "unknown"
    token, unlike :class:`CharTokenizer`), and the base vocabulary does not
    depend on the corpus.  The price is that a rare non-ASCII character costs
    two to four tokens and a single token may hold part of a character; on
    mostly-English text such as Python's documentation this hardly matters.

    Training (:meth:`train`) splits the text into chunks (:func:`split_chunks`),
    then repeatedly merges the most frequent pair of neighbouring tokens into a
    new token, until the vocabulary has ``vocab_size`` entries.  Ties between
    equally frequent pairs go to the pair with the smallest ids, so two
    trainings on the same text give the same merges.  Pair counts are updated
    incrementally: a merge only revisits the chunks that contain its pair.

    ``merges[k]`` is the pair of ids that became id ``256 + k``; ``vocab[i]``
    is the bytes of id ``i``.

    Chapter 01, "Byte-pair encoding".
    """

    def __init__(self, merges: Sequence[tuple[int, int]] = ()):
        self.merges: list[tuple[int, int]] = []
        self.vocab: list[bytes] = [bytes([b]) for b in range(256)]
        for a, b in merges:
            if not (0 <= a < len(self.vocab) and 0 <= b < len(self.vocab)):
                raise ValueError(f"BPETokenizer: merge ({a}, {b}) refers to an id not in [0, {len(self.vocab)})")
            self.merges.append((a, b))
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self._ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(cls, text: str, vocab_size: int, *, progress: bool | None = None) -> BPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text``.

        ``progress`` shows a tqdm bar; by default it does when there are more
        than 100 merges to learn.  If every chunk of the text has become a
        single token before the vocabulary is full, training stops early with a
        warning and the vocabulary is smaller than asked.
        """
        if not isinstance(text, str):
            raise TypeError(f"BPETokenizer.train: text must be a str, got {type(text).__name__}")
        if not text:
            raise ValueError("BPETokenizer.train: text is empty (got ''); there is nothing to learn merges from")
        if not isinstance(vocab_size, int) or isinstance(vocab_size, bool):
            raise TypeError(f"BPETokenizer.train: vocab_size must be an int, got {type(vocab_size).__name__}")
        if vocab_size < 256:
            raise ValueError(f"BPETokenizer.train: vocab_size={vocab_size} is smaller than the byte alphabet "
                             f"(256 ids); ask for at least 256")
        n_merges = vocab_size - 256
        counts = Counter(split_chunks(text))
        seqs = [list(chunk.encode("utf-8")) for chunk in counts]
        freqs = list(counts.values())

        pair_counts: Counter[tuple[int, int]] = Counter()
        where: dict[tuple[int, int], set[int]] = {}
        for w, (seq, f) in enumerate(zip(seqs, freqs)):
            for pair in zip(seq, seq[1:]):
                pair_counts[pair] += f
                where.setdefault(pair, set()).add(w)
        # Max-heap by count, ties to the smallest pair; entries go stale when a
        # count changes and are skipped when popped.
        heap = [(-c, pair) for pair, c in pair_counts.items()]
        heapq.heapify(heap)

        merges: list[tuple[int, int]] = []
        show = n_merges > _PROGRESS_FROM if progress is None else progress
        for step in tqdm(range(n_merges), desc="BPE merges", disable=not show):
            while heap and pair_counts.get(heap[0][1], 0) != -heap[0][0]:
                heapq.heappop(heap)
            if not heap:
                warnings.warn(f"BPETokenizer.train: no pair left to merge after {step} merges; "
                              f"the vocabulary has {256 + step} ids, not vocab_size={vocab_size}", stacklevel=2)
                break
            pair = heapq.heappop(heap)[1]
            new_id = 256 + step
            merges.append(pair)
            touched = set()
            for w in where.pop(pair):
                seq, f = seqs[w], freqs[w]
                merged = _merge(seq, pair, new_id)
                if len(merged) == len(seq):  # stale entry: an earlier merge already used these tokens
                    continue
                for p in zip(seq, seq[1:]):
                    pair_counts[p] -= f
                    touched.add(p)
                for p in zip(merged, merged[1:]):
                    pair_counts[p] += f
                    where.setdefault(p, set()).add(w)
                    touched.add(p)
                seqs[w] = merged
            for p in touched:
                if pair_counts[p] > 0:
                    heapq.heappush(heap, (-pair_counts[p], p))
                else:
                    del pair_counts[p]
        return cls(merges)

    @property
    def vocab_size(self) -> int:
        """Number of ids, ``|V|`` (256 bytes plus one per merge)."""
        return len(self.vocab)

    def __len__(self) -> int:
        return self.vocab_size

    def _encode_chunk(self, chunk: str) -> list[int]:
        if chunk in self._cache:
            return self._cache[chunk]
        seq = list(chunk.encode("utf-8"))
        while len(seq) > 1:
            # Apply the earliest-learned merge present; this reproduces training's order.
            pair = min(zip(seq, seq[1:]), key=lambda p: self._ranks.get(p, len(self._ranks)))
            if pair not in self._ranks:
                break
            seq = _merge(seq, pair, 256 + self._ranks[pair])
        self._cache[chunk] = seq
        return seq

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``: any string works, since every character is made of bytes."""
        if not isinstance(text, str):
            raise TypeError(f"BPETokenizer.encode: text must be a str, got {type(text).__name__}")
        return [i for chunk in split_chunks(text) for i in self._encode_chunk(chunk)]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of a list of ids; bytes that do not form valid UTF-8 become U+FFFD."""
        data = b"".join(self.vocab[i] for i in _check_ids(ids, self.vocab_size, "BPETokenizer"))
        return data.decode("utf-8", errors="replace")

    def tokens(self, text: str) -> list[str]:
        """The pieces of ``text`` as the tokenizer sees them; a partial character shows as ``\\xNN``."""
        return [self.vocab[i].decode("utf-8", errors="backslashreplace") for i in self.encode(text)]
