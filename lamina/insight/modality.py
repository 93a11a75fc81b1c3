"""What explaining one kind of input needs, as one object per modality (images, tables, text, audio, token
sequences of language models). The explanation driver (lamina/insight/explain.py) chooses the modality from the
run's DataSpec and model, and leaves to it everything that depends on the kind of input: the baseline, the
attribution methods, what "removing a unit" means for the deletion curve, and the pictures or pages written.

A *unit* is what an attribution scores: a pixel (summed over channels), a table feature, a token, a cell of a
spectrogram (time × frequency). `attribute` returns one score per unit, shaped (N, *units); `delete` replaces the
units chosen by a boolean mask of that shape with the baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from torch import Tensor, nn

    from lamina.data.spec import DataSpec

__all__ = ["ExplainContext", "Explained", "Modality"]


@dataclass
class ExplainContext:
    """What a modality may read while explaining: the model, its data's spec, and facts about the data.

    `stored` are the inputs as the data set stores them (uint8 images, token ids, spectrogram frames);
    `inputs` the same after the run's transform (what the model reads). `train_mean`: the mean model input over the
    train split (a baseline for tables and images). `tokens`: id → text of each token, for text and language models.
    `pad_id`: the padding token. `layer`: a layer name the user chose (Grad-CAM, token embedding), or None for the
    modality's default. `preprocessing`: the run's preprocessing record (data.json), from which text and audio read
    their tokenizer and transform (sample rate, hop, the silence baseline). `texts`: the raw texts of the inputs
    when known (fastText's n-grams are then summed back into the words they came from).
    `extra`: anything else a modality wants to pass between its steps.

    Added for the driver and the table modality: `transform`, the run's stored → model input transform (a black
    image's model input); `probabilities`, model outputs → (N, classes) probabilities as the run reads them (its
    objective's scores; regression: predictions in the targets' units); `validation`, the val split's (model inputs,
    targets), and `metric`, the name of the run's metric on it (permutation importance); `seed`, the seed of every
    random draw (a modality with a stochastic method or baseline uses it, so that the sanity check's "self"
    reference — the same explanation under seed + 1 — differs from it only in that draw).
    """

    model: nn.Module
    spec: DataSpec
    stored: Tensor
    inputs: Tensor
    train_mean: Tensor | None = None
    tokens: list[str] | None = None
    pad_id: int | None = None
    layer: str | None = None
    preprocessing: dict[str, Any] | None = None
    texts: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    transform: Callable[[Tensor], Tensor] | None = None
    probabilities: Callable[[Tensor], Tensor] | None = None
    validation: tuple[Tensor, Tensor] | None = None
    metric: str | None = None
    seed: int = 0


@dataclass
class Explained:
    """One explained input: its name (file or split:index), the class explained (`target`), what the model
    predicted with which probability, the true label when known, and the attribution per unit."""

    name: str
    target: int
    predicted: int
    probability: float
    attribution: Tensor
    true_label: int | None = None


class Modality(Protocol):
    """One kind of input. `methods` lists the attribution methods it offers; the first is the default."""

    kind: str
    methods: tuple[str, ...]
    baseline_description: str  # written into explanation.json and the docs, e.g. "the mean image of the train split"

    def baseline(self, context: ExplainContext) -> Tensor:
        """The reference input (shaped like context.inputs) that attributions and deletion start from."""

    def attribute(
        self, model: nn.Module, inputs: Tensor, targets: Tensor, method: str, context: ExplainContext
    ) -> Tensor:
        """One score per unit, (N, *units), for the class `targets` (N,) of each input; positive: towards it."""

    def delete(self, inputs: Tensor, mask: Tensor, context: ExplainContext) -> Tensor:
        """`inputs` with the units where `mask` (N, *units) is True replaced by the baseline."""

    def write(self, folder: Path, items: list[Explained], method: str, context: ExplainContext) -> list[Path]:
        """The pictures or pages of these explanations, written (atomically) into `folder`; the paths written."""

    def show(self, items: list[Explained], context: ExplainContext) -> str:
        """Lines for the terminal (tokens coloured by attribution, the top features, …); may be empty."""
