"""One small training loop with a progress bar, shared by every chapter that trains.

First used in chapter 04, "A model whose heads specialise".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

__all__ = ["TrainingHistory", "train", "next_token_loss"]

Batch = tuple[torch.Tensor, torch.Tensor]


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``logits (..., vocab)`` against integer ``targets (...)``; -100 marks ignored positions."""
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"next_token_loss: logits {tuple(logits.shape)} must be targets {tuple(targets.shape)} "
                         f"plus a vocabulary dimension")
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


@dataclass
class TrainingHistory:
    """Loss at every step, and evaluation results at the steps where ``eval_fn`` ran."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    evals: list[float] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        """Mean loss over the last tenth of training (at least one step): less noisy than the last step."""
        tail = max(1, len(self.losses) // 10)
        return sum(self.losses[-tail:]) / tail


def train(
    model: nn.Module,
    get_batch: Callable[[], Batch],
    *,
    steps: int,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = next_token_loss,
    grad_clip: float | None = 1.0,
    eval_fn: Callable[[nn.Module], float] | None = None,
    eval_every: int = 0,
    progress: bool = True,
    desc: str = "training",
) -> TrainingHistory:
    """Train ``model`` with AdamW for ``steps`` steps on batches from ``get_batch()``; returns the history.

    ``get_batch`` returns ``(inputs, targets)``; the loss is ``loss_fn(model(inputs), targets)``.
    ``eval_fn(model)`` runs in eval mode without gradients every ``eval_every``
    steps and after the last one.
    """
    if not isinstance(steps, int) or steps <= 0:
        raise ValueError(f"train: steps must be a positive int, got {steps!r}")
    if eval_every < 0:
        raise ValueError(f"train: eval_every must be >= 0, got {eval_every}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = TrainingHistory()

    def evaluate(step: int) -> None:
        model.eval()
        with torch.no_grad():
            history.evals.append(float(eval_fn(model)))
        history.eval_steps.append(step)
        model.train()

    model.train()
    bar = tqdm(range(1, steps + 1), desc=desc, disable=not progress, mininterval=1.0, leave=False)
    for step in bar:
        inputs, targets = get_batch()
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        history.steps.append(step)
        history.losses.append(loss.item())
        if eval_fn is not None and (step == steps or (eval_every and step % eval_every == 0)):
            evaluate(step)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{history.losses[-1]:.3f}")
    model.eval()
    return history
