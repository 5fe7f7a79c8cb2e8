"""Memory-augmented attention (chapter 11): segment recurrence = one masked pass; exact kNN top-k."""

from __future__ import annotations

import pytest
import torch

from selfattention.attention import scaled_dot_product_attention
from selfattention.efficient import KNNMemory, SegmentRecurrence, segment_mask


def tensors(*shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*s, generator=g, dtype=torch.float64) for s in shapes)


@pytest.mark.parametrize("segment_len,mem_len", [(10, 0), (10, 10), (10, 4), (7, 25), (64, 64)])
def test_segments_equal_one_pass_with_the_equivalent_mask(segment_len, mem_len):
    q, k, v = tensors((2, 3, 64, 8), (2, 3, 64, 8), (2, 3, 64, 5))
    rec = SegmentRecurrence(mem_len)
    pieces = [rec(q[..., s : s + segment_len, :], k[..., s : s + segment_len, :], v[..., s : s + segment_len, :])
              for s in range(0, 64, segment_len)]
    expected, _ = scaled_dot_product_attention(q, k, v, segment_mask(64, segment_len, mem_len))
    torch.testing.assert_close(torch.cat(pieces, dim=-2), expected, rtol=0, atol=1e-12)
    assert rec.k.shape[-2] == min(mem_len, 64)
    rec.reset()
    assert rec.k is None


def test_segment_mask_by_hand():
    assert segment_mask(6, 2, 1).int().tolist() == [
        [1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0],
        [0, 1, 1, 1, 0, 0], [0, 0, 0, 1, 1, 0], [0, 0, 0, 1, 1, 1]]


def test_knn_returns_the_exact_top_k_and_drops_the_oldest():
    keys, values, queries = tensors((300, 16), (300, 4), (2, 7, 16))
    mem = KNNMemory(capacity=250)
    for s in range(0, 300, 60):
        mem.add(keys[s : s + 60], values[s : s + 60])
    assert len(mem) == 250
    kept_k, kept_v = keys[50:], values[50:]
    scores, index = mem.search(queries, 10)
    full = queries @ kept_k.T
    order = full.argsort(dim=-1, descending=True)[..., :10]
    assert torch.equal(index, order)
    torch.testing.assert_close(scores, full.gather(-1, order), rtol=0, atol=0)
    # attending over all stored keys equals dense attention over the memory
    expected, _ = scaled_dot_product_attention(queries, kept_k, kept_v)
    torch.testing.assert_close(mem.attend(queries, 250), expected, rtol=0, atol=1e-12)


def test_errors():
    with pytest.raises(ValueError, match=r"KNNMemory.search: the memory is empty"):
        KNNMemory(5).search(torch.zeros(1, 4), 1)
    mem = KNNMemory(5)
    mem.add(torch.zeros(3, 4), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"top_k=4 is more than the 3 stored keys"):
        mem.search(torch.zeros(1, 4), 4)
    with pytest.raises(ValueError, match=r"KNNMemory.add: the memory holds keys of size 4 and values of size 2, got keys \(1, 4\) and values \(1, 3\)"):
        mem.add(torch.zeros(1, 4), torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"KNNMemory.add: keys and values must be 2-D"):
        mem.add(torch.zeros(1, 1, 4), torch.zeros(1, 1, 2))
    with pytest.raises(ValueError, match=r"KNNMemory: capacity must be an int >= 1, got 0"):
        KNNMemory(0)
    with pytest.raises(ValueError, match=r"SegmentRecurrence: mem_len must be an int >= 0, got -2"):
        SegmentRecurrence(-2)
    with pytest.raises(ValueError, match=r"segment_mask: segment_len must be an int >= 1, got 0"):
        segment_mask(4, 0, 1)


def test_key_value_recall_task():
    from selfattention.data import key_value_recall

    task = key_value_recall(5, n_pairs=4, n_symbols=10, segment_len=8, n_segments=3,
                            generator=torch.Generator().manual_seed(0))
    assert all(t.shape == (5, 24) for t in task.values())
    for b in range(5):
        stated = dict(zip(task["keys"][b, :4].tolist(), task["values"][b, :4].tolist()))
        assert len(stated) == 4 and (task["keys"][b, 4:] == -1).all()
        asked = task["queries"][b, 16:20].tolist()
        assert sorted(asked) == sorted(stated) and (task["queries"][b, :16] == -1).all()
        assert task["answers"][b, 16:20].tolist() == [stated[key] for key in asked]
    again = key_value_recall(5, n_pairs=4, n_symbols=10, segment_len=8, n_segments=3,
                             generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(task[name], again[name]) for name in task)
    with pytest.raises(ValueError, match=r"key_value_recall: n_pairs=9 must be at most n_symbols=8 and segment_len=16"):
        key_value_recall(2, n_pairs=9, n_symbols=8)
    with pytest.raises(ValueError, match=r"key_value_recall: n_segments must be an int >= 2, got 1"):
        key_value_recall(2, n_segments=1)


def test_segment_recurrence_rejects_a_segment_that_does_not_fit_the_cache():
    memory = SegmentRecurrence(mem_len=4)
    x = torch.randn(2, 1, 4, 8)
    memory(x, x, x)
    y = torch.randn(3, 1, 4, 8)
    with pytest.raises(ValueError, match=r"SegmentRecurrence: the cache holds k \(2, 1, 4, 8\)"):
        memory(y, y, y)
