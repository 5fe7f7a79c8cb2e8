"""Corpora and generated tasks.  Nothing here downloads: text comes from Python itself.

Used from chapter 01 on; each generator names the chapter that uses it and is
deterministic given a ``torch.Generator`` or seed.
"""

from __future__ import annotations

import torch


# --- Chapters 01 and 02: the documentation corpus, the "bank" sentences, the attention sentence ---

#: The sentence of chapter 02, "Attention by hand": the pronoun "it" should attend to "cup".
ATTENTION_SENTENCE = "She poured water into the cup until it was full."

#: Chapter 01, "One word, one vector": "bank" by a river ...
BANK_RIVER_SENTENCE = "We sat on the grassy bank of the river."
#: ... and "bank" with money.
BANK_MONEY_SENTENCE = "She deposited the money at the bank."


def python_docs_corpus(max_chars: int | None = None) -> str:
    """The text of Python's own reference documentation (``pydoc_data.topics``), shipped with Python.

    Topics are joined in sorted order of their names, separated by a blank
    line, so the text is the same on every run for a given Python version.
    ``max_chars`` keeps only the first characters.

    Chapter 01, "Byte-pair encoding" (training corpus of the tokenizer).
    """
    from pydoc_data.topics import topics

    if max_chars is not None and (not isinstance(max_chars, int) or max_chars <= 0):
        raise ValueError(f"python_docs_corpus: max_chars must be a positive int or None, got {max_chars!r}")
    text = "\n\n".join(topics[name].strip() for name in sorted(topics))
    return text if max_chars is None else text[:max_chars]


def bank_sentences(n_per_sense: int = 60, seed: int = 0) -> list[tuple[str, str]]:
    """Generated sentences about river banks and money banks, with their sense: ``(sentence, "river" | "money")``.

    Half the sentences of each sense contain "bank"; the other half talk about
    the same things without it (rivers, loans), so that the neighbours of
    "bank" can be learned from the company each word keeps.  Lower case,
    words separated by single spaces, ending with " .".  Deterministic given
    ``seed``; the two senses alternate.

    Chapter 01, "One word, one vector"; the same senses return in chapter 08.
    """
    import random

    if not isinstance(n_per_sense, int) or n_per_sense < 1:
        raise ValueError(f"bank_sentences: n_per_sense must be a positive int, got {n_per_sense!r}")
    rng = random.Random(seed)
    people = ["we", "the children", "an old man", "my sister", "the farmer", "a tourist"]
    water = ["river", "stream", "lake", "canal"]
    shore = ["muddy", "grassy", "steep", "rocky", "quiet"]
    river_with = ["{p} sat on the {s} bank of the {w} .", "{p} fished from the {s} bank of the {w} .",
                  "the {w} flooded its {s} bank after the rain ."]
    river_without = ["{p} swam in the cold {w} .", "{p} fished in the {s} {w} .",
                     "the {w} flooded after the rain ."]
    money = ["money", "cash", "savings", "salary"]
    act = ["deposited", "withdrew", "saved", "borrowed"]
    money_with = ["{p} {a} {m} at the bank .", "the bank gave {p} a loan and some {m} .",
                  "{p} opened an account at the bank for the {m} ."]
    money_without = ["{p} {a} {m} from the account .", "the lender gave {p} a loan and some {m} .",
                     "{p} opened an account for the {m} ."]
    out = []
    for k in range(n_per_sense):
        river = (river_with if k % 2 == 0 else river_without)[rng.randrange(3)]
        cash = (money_with if k % 2 == 0 else money_without)[rng.randrange(3)]
        out.append((river.format(p=rng.choice(people), s=rng.choice(shore), w=rng.choice(water)), "river"))
        out.append((cash.format(p=rng.choice(people), a=rng.choice(act), m=rng.choice(money)), "money"))
    return out


def twin_letters_task(batch_size: int, n_symbols: int = 8, *,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two questions about every position of a shuffled sequence of letter twins, to make heads specialise.

    Each sequence holds ``n_symbols`` letters twice, once in upper case and
    later in lower case, in random order: length ``L = 2 * n_symbols``.  Token
    ids are ``s`` for the upper-case letter ``s`` and ``n_symbols + s`` for its
    lower-case twin (see :func:`twin_letters_vocabulary`).  For every position
    ``i`` the targets ask

    - ``targets[..., i, 0]``: which token stands just before ``i``?  (needs the
      previous position, whatever it holds; ``-100``, ignored, at ``i = 0``);
    - ``targets[..., i, 1]``: at which position is the upper-case twin of this
      lower-case letter?  (needs the matching token, however far back;
      ``-100`` at upper-case letters).

    Returns ``tokens (B, L)`` and ``targets (B, L, 2)`` (int64), deterministic
    given ``generator``.

    Chapter 04, "A model whose heads specialise".
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"twin_letters_task: batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(n_symbols, int) or not 1 <= n_symbols <= 26:
        raise ValueError(f"twin_letters_task: n_symbols must be an int in [1, 26], got {n_symbols!r}")
    length = 2 * n_symbols
    slots = torch.argsort(torch.rand(batch_size, length, generator=generator), dim=-1)  # (B, L): where item k goes
    first = torch.minimum(slots[:, :n_symbols], slots[:, n_symbols:])  # (B, n) position of the upper-case twin
    second = torch.maximum(slots[:, :n_symbols], slots[:, n_symbols:])  # (B, n) position of the lower-case twin
    symbols = torch.arange(n_symbols).expand(batch_size, n_symbols)
    tokens = torch.empty(batch_size, length, dtype=torch.long)
    tokens.scatter_(1, first, symbols)
    tokens.scatter_(1, second, symbols + n_symbols)
    previous = torch.full((batch_size, length), -100)
    previous[:, 1:] = tokens[:, :-1]
    twin = torch.full((batch_size, length), -100)
    twin.scatter_(1, second, first)
    return tokens, torch.stack([previous, twin], dim=-1)


def twin_letters_vocabulary(n_symbols: int = 8) -> list[str]:
    """The strings of :func:`twin_letters_task`'s token ids: ``["A", "B", ..., "a", "b", ...]``.

    Chapter 04, "A model whose heads specialise".
    """
    if not isinstance(n_symbols, int) or not 1 <= n_symbols <= 26:
        raise ValueError(f"twin_letters_vocabulary: n_symbols must be an int in [1, 26], got {n_symbols!r}")
    upper = [chr(ord("A") + s) for s in range(n_symbols)]
    return upper + [u.lower() for u in upper]


# --- Chapter 11: a recall task that spans segments -------------------------------------------

def key_value_recall(batch_size: int, n_pairs: int = 6, n_symbols: int = 16, segment_len: int = 16,
                     n_segments: int = 2, *, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Key-value pairs stated in the first segment, asked for in the last one.

    Each document has ``n_segments * segment_len`` positions.  The first
    ``n_pairs`` positions of segment 0 state a pair (a distinct key symbol and
    a value symbol); the first ``n_pairs`` positions of the last segment ask
    for those keys in a shuffled order.  Everything else is filler.  Returns
    ``(batch_size, L)`` long tensors ``keys``, ``values``, ``queries`` and
    ``answers``, with ``-1`` where a position has none.  A model that sees only
    the current segment cannot do better than guess.

    Chapter 11, "A task that needs the previous segment".
    """
    for name, value in (("batch_size", batch_size), ("n_pairs", n_pairs), ("n_symbols", n_symbols),
                        ("segment_len", segment_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"key_value_recall: {name} must be a positive int, got {value!r}")
    if isinstance(n_segments, bool) or not isinstance(n_segments, int) or n_segments < 2:
        raise ValueError(f"key_value_recall: n_segments must be an int >= 2, got {n_segments!r}")
    if n_pairs > min(n_symbols, segment_len):
        raise ValueError(f"key_value_recall: n_pairs={n_pairs} must be at most n_symbols={n_symbols} "
                         f"and segment_len={segment_len}")
    length = n_segments * segment_len
    out = {name: torch.full((batch_size, length), -1, dtype=torch.long)
           for name in ("keys", "values", "queries", "answers")}
    last = (n_segments - 1) * segment_len
    for b in range(batch_size):
        keys = torch.randperm(n_symbols, generator=generator)[:n_pairs]
        values = torch.randint(n_symbols, (n_pairs,), generator=generator)
        order = torch.randperm(n_pairs, generator=generator)
        out["keys"][b, :n_pairs], out["values"][b, :n_pairs] = keys, values
        out["queries"][b, last : last + n_pairs], out["answers"][b, last : last + n_pairs] = keys[order], values[order]
    return out


# --- Chapters 05 and 06: character windows of a corpus, and copying a token k positions back ---

def text_windows(ids: torch.Tensor, length: int, batch_size: int, *,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of a token stream for next-token prediction: ``inputs (B, L)`` and ``targets (B, L)``.

    ``ids`` is a 1-D tensor of token ids (a whole corpus); each row of
    ``targets`` is the row of ``inputs`` shifted by one token.  Deterministic
    given ``generator``.

    Chapter 05, "Train short, test long"; chapter 06, "Pre-LN or post-LN".
    """
    if not isinstance(ids, torch.Tensor) or ids.ndim != 1 or ids.is_floating_point():
        got = f"{ids.dtype} {tuple(ids.shape)}" if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise ValueError(f"text_windows: ids must be a 1-D integer tensor, got {got}")
    for name, value in (("length", length), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"text_windows: {name} must be a positive int, got {value!r}")
    if len(ids) < length + 1:
        raise ValueError(f"text_windows: a window of length {length} needs at least {length + 1} ids, got {len(ids)}")
    start = torch.randint(0, len(ids) - length, (batch_size, 1), generator=generator)  # (B, 1)
    index = start + torch.arange(length + 1)  # (B, L + 1)
    window = ids[index]
    return window[:, :-1], window[:, 1:]


def lag_copy_task(batch_size: int, length: int, lags: list[int], n_symbols: int = 8, *,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random symbols, and for every position the symbol ``k`` positions back, for each ``k`` in ``lags``.

    Returns ``tokens (B, L)`` uniform over ``n_symbols`` and ``targets (B, L, len(lags))``
    with ``targets[b, t, i] = tokens[b, t - lags[i]]``, or ``-100`` (ignored)
    where ``t < lags[i]``.  A causal model can answer lag ``k`` only if it
    still holds the token it saw ``k`` steps ago: chance is ``1/n_symbols``.

    Chapter 06, "Long-range dependencies".
    """
    for name, value in (("batch_size", batch_size), ("length", length), ("n_symbols", n_symbols)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"lag_copy_task: {name} must be a positive int, got {value!r}")
    if not lags or any(isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < length for k in lags):
        raise ValueError(f"lag_copy_task: lags must be a non-empty list of ints in [1, length={length}), got {lags!r}")
    tokens = torch.randint(0, n_symbols, (batch_size, length), generator=generator)
    targets = torch.full((batch_size, length, len(lags)), -100, dtype=torch.long)
    for i, k in enumerate(lags):
        targets[:, k:, i] = tokens[:, :-k]
    return tokens, targets
