"""The `explain:` section of a config: explanations of the test split's predictions at the end of training, with
their faithfulness figures in summary.json (docs/insight.md). Importing this module does not import PyTorch."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from lamina.core.options import Options

__all__ = ["ExplainOptions"]


class ExplainOptions(Options):
    """Explain predictions when training ends (off by default): pictures and explanation.json in
    RUN/explanations/<method>-<split>/, the sanity check and deletion figures in summary.json under 'explain'."""

    name: ClassVar[str] = "explaining"  # how errors about the section name it: "explaining needs the package …"

    enabled: bool = False
    """Explain predictions after the final evaluation."""
    method: str | None = None
    """Attribution method; default: the one for the kind of input (images and tables: integrated_gradients). The
    methods of each kind: lamina explain --help, docs/insight.md."""
    split: str = Field("test", pattern="^(train|val|test)$")
    """The split whose inputs are explained (the first `count` of a random order seeded by 0): train, val or test."""
    count: int = Field(16, ge=1, le=10_000)
    """How many inputs to explain."""
    target: str = "predicted"
    """The class each input is explained towards: 'predicted', or a class name or index."""

    def optional_packages(self) -> dict[str, str]:
        return {"": "captum"} if self.enabled else {}
