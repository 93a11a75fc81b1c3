"""Online pseudo-labelling with consistency (FixMatch; Sohn et al., 2020), as a training step.

At every step, beside the labelled batch, a batch of `unlabelled_ratio` × batch size images is drawn from the
'unlabelled' split. The model labels their weakly augmented view (data.augment) without gradients; where its
probability for the class reaches `threshold`, that class becomes the target of the strongly augmented view
(strong_augment on top of the weak one). Labels come from the model in evaluation mode (no dropout; batch norm
from running statistics), or from its weight average when train.weight_average is set:

    loss = loss(labelled) + weight · Σ_kept loss(strong_i, pseudo_i) / unlabelled batch size

The labelled and strong views pass through the model together, so batch normalization sees both. Draws are a
function of (seed, step) only: a resumed run sees the same unlabelled batches and augmentations.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lamina.models.output import split_output
from lamina.train.losses import Objective

__all__ = ["OnlinePseudoLabels", "online_pseudo_labels"]


class OnlinePseudoLabels:
    """The step function of online pseudo-labelling; `loop.state.step` seeds each step's draws."""

    def __init__(self, loop: Any, options: Any, strong_augment):
        self.loop, self.options, self.strong_augment = loop, options, strong_augment
        self.pool = loop.data.splits["unlabelled"]

    def __call__(self, model: nn.Module, inputs: Tensor, targets: Tensor, objective: Objective):
        loop, options = self.loop, self.options
        count = len(inputs) * options.unlabelled_ratio
        position = ((loop.seed * 1_000_003 + loop.state.step) * 7919 + 17) % (2**63)
        device = inputs.device
        index = torch.randint(len(self.pool), (count,), generator=torch.Generator().manual_seed(position))
        weak = loop.data.transform(self.pool.inputs[index.to(self.pool.inputs.device)].to(device))
        generator = torch.Generator(device).manual_seed(position)
        placeholder = torch.full((count,), -1, dtype=torch.int64, device=device)
        if loop.data.augment is not None:
            weak, _ = loop.data.augment(weak, placeholder, generator)
        labeller = model if loop.evaluation_model is None else loop.evaluation_model  # averaged weights, if any
        training = labeller.training
        labeller.eval()  # labels without dropout noise, batch norm from its running statistics
        with torch.no_grad():
            weak_output, _, _ = split_output(labeller(weak))
            confidence, pseudo = objective.scores(weak_output).max(dim=1)
            keep = confidence >= options.threshold
        labeller.train(training)
        strong = weak
        if self.strong_augment is not None:
            strong, _ = self.strong_augment(weak, pseudo, generator)
        prediction, auxiliary, statistics = split_output(model(torch.cat([inputs, strong])))
        labelled, unlabelled = prediction[: len(inputs)], prediction[len(inputs) :]  # (B, C), (μB, C)
        loss = objective.loss(labelled, targets)
        kept = int(keep.sum())
        unlabelled_loss = objective.loss(unlabelled[keep], pseudo[keep]) * (kept / count) if kept else loss * 0
        loss = loss + options.weight * unlabelled_loss
        for value in auxiliary.values():
            loss = loss + value
        logged = {"pseudo_label_fraction": keep.float().mean(), "unlabelled_loss": unlabelled_loss.detach()}
        return loss, labelled, {**auxiliary, **statistics, **logged}


def online_pseudo_labels(loop: Any, data_options: Any) -> OnlinePseudoLabels | None:
    """The step function for `data.pseudo_labels` without a teacher (validated by ImageOptions), else None."""
    options = getattr(data_options, "pseudo_labels", None)
    if options is None or options.teacher is not None:
        return None
    from lamina.data.augment import build_augmentation

    return OnlinePseudoLabels(loop, options, build_augmentation(options.strong_augment, loop.data))
