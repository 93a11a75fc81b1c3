"""What a model needs to know about its data to size itself; saved with every run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from lamina.tasks import task_of

__all__ = ["DataSpec"]


@dataclass
class DataSpec:
    """Shapes and task of a data set, independent of where it came from.

    Example:
        >>> spec = DataSpec(kind="image", task="classification", input_shape=(1, 28, 28), num_classes=10)
        >>> spec.output_size
        10
    """

    kind: str  # the inputs: "image" (C, H, W), "tabular" (F,), "text" (T,) ids, "audio" (1, bins, frames), "sequence" (T, F)
    task: str  # the name of a registered Task (lamina/tasks): classification, regression, …
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
        if self.output_size is None:  # one output per class, or per target value
            count = self.num_classes if self.num_classes is not None else self.num_targets
            self.output_size = int(count) if count is not None else None

    @property
    def positive_index(self) -> int:
        """The positive class of two-class data (data.positive_class, as an index; default 1): the class that
        sensitivity, the threshold, f1 and the curves are about."""
        return int(self.extra.get("positive_class", 1))

    def describe(self) -> str:
        """'image inputs of shape (1×8×8), classification with 10 classes'."""
        shape = "×".join(str(size) for size in self.input_shape)
        return f"{self.kind} inputs of shape ({shape}), {self.task} with {task_of(self).describe(self)}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> DataSpec:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})
