"""What a model needs to know about its data to size itself; saved with every run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

__all__ = ["DataSpec"]


@dataclass
class DataSpec:
    """Shapes and task of a data set, independent of where it came from.

    Example:
        >>> spec = DataSpec(kind="image", task="classification", input_shape=(1, 28, 28), num_classes=10)
        >>> spec.output_size
        10
    """

    kind: str  # "image" (C, H, W) | "tabular" (F,) — later families add "text", "audio", "sequence"
    task: str  # "classification" | "regression"
    input_shape: tuple[int, ...]  # one sample, without the batch dimension
    num_classes: int | None = None
    num_targets: int | None = None
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    target_names: list[str] | None = None
    target_mean: list[float] | None = None  # regression targets are standardized with train statistics
    target_std: list[float] | None = None
    output_size: int | None = None  # model outputs; default classes or targets (1 for binary cross-entropy)
    extra: dict = field(default_factory=dict)  # family-specific facts (vocabulary size, sample rate, ...)

    def __post_init__(self):
        self.input_shape = tuple(int(size) for size in self.input_shape)
        if self.output_size is None:
            count = self.num_classes if self.task == "classification" else self.num_targets
            self.output_size = int(count) if count is not None else None

    def describe(self) -> str:
        shape = "×".join(str(size) for size in self.input_shape)
        target = f"{self.num_targets} targets" if self.num_targets is not None else f"{self.num_classes} classes"
        if self.task == "language_modeling":
            target = f"a vocabulary of {self.num_classes} tokens"
        return f"{self.kind} inputs of shape ({shape}), {self.task} with {target}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> DataSpec:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})
