"""Learning from few labels, in one place: the images of the 'unlabelled' split (data.labelled_fraction < 1) teach
the model through pseudo-labels or through reconstruction.

- Offline pseudo-labels (`data.pseudo_labels.teacher`): finished teacher runs label the pool once; images they
  label confidently join the training split (`pseudo_labeller`, applied while the data is built).
- Online pseudo-labels (`data.pseudo_labels` without a teacher; FixMatch, Sohn et al., 2020): at every step the
  model labels a weakly augmented unlabelled batch and learns its confident labels on strongly augmented copies
  (`OnlinePseudoLabels`, a step function).
- Reconstruction (`model.reconstruction_weight`, a semi-supervised autoencoder): every step also reconstructs
  unlabelled images (`UnlabelledReconstruction`, a step function).

Each step's unlabelled draws are a function of (seed, step) only, so a resumed run sees the same batches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lamina.core.errors import DataError, Problem
from lamina.data.augment import build_augmentation
from lamina.data.bundle import DataBundle, Split
from lamina.data.inputs import transform_for
from lamina.data.options import DataOptions, ImageOptions, PseudoLabelOptions
from lamina.models.options import AutoencoderOptions, ModelOptions
from lamina.models.output import split_output
from lamina.tasks import task_of
from lamina.training.evaluate import model_outputs
from lamina.training.steps import StepContext, StepFunction, supervised_step

__all__ = [
    "pseudo_labeller",
    "semi_supervised_step",
    "semi_supervised_problems",
    "OnlinePseudoLabels",
    "UnlabelledReconstruction",
]


# ---- offline: teacher runs label the pool once ---------------------------------------------------------------


def pseudo_labeller(
    config: ImageOptions, seed: int, open_run: Callable[[str], Any]
) -> Callable[[DataBundle], DataBundle]:
    """What data.pseudo_labels does to a bundle with an 'unlabelled' split: with teachers, their confident labels
    move images into the training split; online, the pool stays for the training step. `config` and `seed` are
    the student's data options and split seed; `open_run` opens a teacher's run folder (lamina.run.load_run)."""

    def label(bundle: DataBundle) -> DataBundle:
        options = config.pseudo_labels
        if "unlabelled" not in bundle.splits:
            raise DataError("data.pseudo_labels needs unlabelled images", "set data.labelled_fraction below 1")
        if options.teacher is None:  # online: the training step labels the pool (OnlinePseudoLabels)
            bundle.notes.append(
                f"online pseudo-labelling: {len(bundle.splits['unlabelled'])} unlabelled images, "
                f"labels kept at confidence ≥ {options.threshold:g}"
            )
            return bundle
        return _label_with_teachers(bundle, options, config, seed, open_run)

    return label


def _label_with_teachers(
    bundle: DataBundle, options: PseudoLabelOptions, config: ImageOptions, seed: int, open_run: Callable[[str], Any]
) -> DataBundle:
    """One teacher run, or several (their probabilities averaged), label the pool; confident samples join train."""
    paths = [options.teacher] if isinstance(options.teacher, str) else options.teacher
    pool = bundle.splits["unlabelled"]
    probabilities = None
    for path in paths:
        teacher = open_run(path)
        teacher.require_completed("a pseudo-labelling teacher")
        if teacher.spec.class_names != bundle.spec.class_names or teacher.spec.input_shape != bundle.spec.input_shape:
            raise DataError(
                f"the teacher run {path} was trained on other classes or image shapes",
                "use a teacher trained on the same data set",
            )
        _check_same_labels(teacher.config, config, seed, path)
        outputs, _, _ = model_outputs(teacher.model, pool, transform_for(teacher.data_record["preprocessing"]), 1024)
        scores = teacher.objective().scores(outputs).float()  # (N, classes) probabilities
        probabilities = scores if probabilities is None else probabilities + scores
    confidence, labels = (probabilities / len(paths)).max(dim=1)
    chosen = confidence >= options.threshold
    train = bundle.splits["train"]
    bundle.splits["train"] = Split(
        torch.cat([train.inputs, pool.inputs[chosen]]), torch.cat([train.targets, labels[chosen]])
    )
    bundle.splits["unlabelled"] = Split(pool.inputs[~chosen], pool.targets[~chosen])
    who = "teacher" if len(paths) == 1 else f"mean of {len(paths)} teachers'"
    bundle.notes.append(
        f"pseudo-labels: {int(chosen.sum())} of {len(pool)} unlabelled images joined the training "
        f"split ({who} confidence ≥ {options.threshold:g})"
    )
    return bundle


def _check_same_labels(teacher_config: Any, config: ImageOptions, seed: int, path: str) -> None:
    """A teacher trained on the same data set must have had the student's labelled subset, no more: otherwise
    it was trained on labels of the 'unlabelled' pool, and its pseudo-labels would leak them."""
    data = teacher_config.data

    def identity(options: DataOptions) -> tuple:  # the data set's kind and its file or folder name
        path = getattr(options, "path", None)
        return options.name, Path(str(path).rstrip("/")).name if path else None

    if identity(data) != identity(config):
        return  # another data set: its labels say nothing about this pool
    teacher_seed = data.seed if data.seed is not None else teacher_config.seed
    fields = ("val_fraction", "test_fraction", "stratify", "classes", "labelled_fraction")
    differ = [
        f"{name} {getattr(data, name)!r} (here {getattr(config, name)!r})"
        for name in fields
        if getattr(data, name, None) != getattr(config, name, None)
    ]
    if teacher_seed != seed:
        differ.append(f"split seed {teacher_seed} (here {seed})")
    if differ:
        raise DataError(
            f"the teacher run {path} was trained on another labelled subset of this data set: "
            f"{', '.join(differ)}; its labels would leak labels of the unlabelled images",
            f"train the teacher with the student's data options (data.seed: {seed})",
        )


# ---- online pseudo-labels (FixMatch) ----------------------------------------------------------------------------


class OnlinePseudoLabels:
    """The step function of online pseudo-labelling. Beside the labelled batch, `unlabelled_ratio` × batch size
    images are drawn from the 'unlabelled' split. The model labels their weakly augmented view (data.augment)
    without gradients, in evaluation mode (no dropout; batch norm from running statistics), or its weight
    average when there is one; where its probability for a class reaches `threshold`, that class becomes the
    target of the strongly augmented view (strong_augment on top of the weak one):

        loss = loss(labelled) + weight · Σ_kept loss(strong_i, pseudo_i) / unlabelled batch size

    The labelled and strong views pass through the model together, so batch normalization sees both."""

    def __init__(self, options: PseudoLabelOptions, data: DataBundle):
        self.options, self.pool = options, data.splits["unlabelled"]
        self.strong_augment = build_augmentation(options.strong_augment, data, "data.pseudo_labels.strong_augment")

    def __call__(self, model: nn.Module, batch: tuple[Tensor, Tensor], context: StepContext):
        (inputs, targets), options, data = batch, self.options, context.data
        objective = context.objective
        count = len(inputs) * options.unlabelled_ratio
        position = ((context.seed * 1_000_003 + context.step) * 7919 + 17) % (2**63)
        device = inputs.device
        index = torch.randint(len(self.pool), (count,), generator=torch.Generator().manual_seed(position))
        weak = data.transform(self.pool.inputs[index.to(self.pool.inputs.device)].to(device))
        generator = torch.Generator(device).manual_seed(position)
        placeholder = torch.full((count,), -1, dtype=torch.int64, device=device)
        if data.augment is not None:
            weak, _ = data.augment(weak, placeholder, generator)
        labeller = model if context.evaluation_model is None else context.evaluation_model
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


# ---- reconstruction of unlabelled images (a semi-supervised autoencoder) ------------------------------------------


class UnlabelledReconstruction:
    """A training step that also reconstructs unlabelled images: loss = supervised loss + weight · the model's
    `reconstruction_loss` on a batch of the 'unlabelled' split as large as the labelled one."""

    def __init__(self, weight: float, data: DataBundle):
        self.weight, self.pool = weight, data.splits["unlabelled"]

    def __call__(self, model: nn.Module, batch: tuple[Tensor, Tensor], context: StepContext):
        inputs = batch[0]
        position = ((context.seed * 1_000_003 + context.step) * 7919 + 29) % (2**63)
        index = torch.randint(len(self.pool), (len(inputs),), generator=torch.Generator().manual_seed(position))
        images = self.pool.inputs[index.to(self.pool.inputs.device)].to(inputs.device)  # uint8 (B, C, H, W)
        loss, prediction, logged = supervised_step(model, batch, context)
        reconstruction = model.reconstruction_loss(context.data.transform(images), images)
        logged["unlabelled_reconstruction"] = reconstruction.detach()
        return loss + self.weight * reconstruction, prediction, logged


# ---- choosing the step, and checking the options ---------------------------------------------------------------------


def _reconstruction_weight(model_options: ModelOptions) -> float:
    return model_options.reconstruction_weight if isinstance(model_options, AutoencoderOptions) else 0.0


def _online(data_options: DataOptions) -> PseudoLabelOptions | None:
    options = data_options.pseudo_labels if isinstance(data_options, ImageOptions) else None
    return options if options is not None and options.teacher is None else None


def semi_supervised_step(model_options: ModelOptions, data_options: DataOptions, data: DataBundle) -> StepFunction:
    """The step function these options ask for: online pseudo-labels, unlabelled reconstruction, or the
    supervised step (semi_supervised_problems has checked that at most one applies)."""
    online = _online(data_options)
    if online is not None:
        return OnlinePseudoLabels(online, data)
    weight = _reconstruction_weight(model_options)
    return UnlabelledReconstruction(weight, data) if weight else supervised_step


def semi_supervised_problems(model_options: ModelOptions, data_options: DataOptions, data: DataBundle) -> list[Problem]:
    """A semi-supervised autoencoder (model.reconstruction_weight) needs unlabelled images, a classification
    task and the step to itself."""
    weight = _reconstruction_weight(model_options)
    if not weight:
        return []
    task = task_of(data.spec)
    if not task.classes:
        return [
            Problem(
                "model.reconstruction_weight",
                f"is {weight:g}, but it trains a classifier beside its decoder and the task is {task.name!r}",
                "remove it: a reconstruction task already trains the whole autoencoder",
            )
        ]
    if "unlabelled" not in data.splits:
        return [
            Problem(
                "model.reconstruction_weight",
                f"is {weight:g}, but there are no unlabelled images to reconstruct",
                "set data.labelled_fraction below 1, or the weight to 0",
            )
        ]
    if _online(data_options) is not None:
        return [
            Problem(
                "model.reconstruction_weight",
                "cannot be combined with online pseudo-labels (data.pseudo_labels without a teacher)",
                "choose one of the two",
            )
        ]
    return []
