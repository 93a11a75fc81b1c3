"""`lamina generate RUN_DIR`: new samples from a trained generative model — images from a variational
autoencoder's prior, text from a language model (transformer, moe or rnn).

Each family that can generate is registered under its model name with the options it takes; this module is the
list of them.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, ValidationError

from lamina.artifacts.folder import atomic_write, disk_error
from lamina.artifacts.plots import image_grid
from lamina.core.errors import Problem, RunError, UsageError
from lamina.core.options import Options, Seed
from lamina.core.problems import problems_from
from lamina.core.registry import Registry
from lamina.data.tokenizers import tokenizer_from_dict
from lamina.models.autoencoder import Autoencoder
from lamina.models.generation import rnn_tokens, transformer_tokens
from lamina.run import Run
from lamina.tasks import task_of

__all__ = ["generators", "generate", "ImageGenerationOptions", "TextGenerationOptions"]

generators = Registry("generator")


def generate(run: Run, **options: Any) -> dict[str, Any]:
    """Generate with a run's model; `options` are the family's generation options (None values are dropped).
    Returns {"path": ...} for images; {"text", "tokens", "seconds"} (and "path" with `output`) for text."""
    family = run.config.model.name
    if family not in generators:
        able = ", ".join(generators.names()) or "none yet"
        raise RunError(f"model family {family!r} cannot generate samples", f"families that can: {able}")
    entry = generators.get(family)
    given = {name: value for name, value in options.items() if value is not None}
    _refuse_foreign(family, [name for name in given if name not in entry.options.model_fields])
    try:
        parsed = entry.options.model_validate(given)
    except ValidationError as error:
        problems = [Problem(_flag(p.path), p.message, p.hint) for p in problems_from(error, entry.options)]
        if len(problems) == 1:
            raise UsageError(str(problems[0])) from None
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise UsageError(f"{len(problems)} options of lamina generate are wrong:\n{listed}") from None
    return entry.function(run, parsed)


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def _refuse_foreign(family: str, foreign: list[str]) -> None:
    """An option that another kind of generator takes (--samples for a language model) is named as such, with the
    options this run's generator takes."""
    if not foreign:
        return

    def where(name: str) -> str:
        families = [other.name for other in generators.values() if name in other.options.model_fields]
        return f"{_flag(name)} is for {', '.join(families)} runs" if families else f"{_flag(name)} is for none"

    flags = " and ".join(_flag(name) for name in foreign)
    takes = ", ".join(_flag(name) for name in generators.get(family).options.model_fields)
    raise UsageError(
        f"{flags} {'does' if len(foreign) == 1 else 'do'} not apply to this run's model, {family!r}",
        f"{family} runs take {takes}; " + "; ".join(where(name) for name in foreign),
    )


# ---- images from a variational autoencoder ---------------------------------------------------------------------


class ImageGenerationOptions(Options):
    """Sample images from a variational autoencoder's prior."""

    samples: int = Field(64, ge=1, le=4096)
    """Images to draw; they are written as one PNG grid."""
    seed: Seed = 0
    """Random seed: the same seed draws the same images."""
    temperature: float = Field(1.0, gt=0)
    """Scale of the codes drawn from N(0, I): below 1 gives more typical, less varied images."""
    output: str | None = None
    """PNG file to write; default samples-<seed>.png in the run's plots/ folder."""


def generate_images(run: Run, options: ImageGenerationOptions) -> dict:
    """A PNG grid of images decoded from codes drawn from the prior (variational autoencoders)."""
    model = run.model
    if not isinstance(model, Autoencoder) or not model.config.variational:
        raise RunError(
            f"run {run.dir} is not a variational autoencoder, so it has no prior to sample from",
            "train one with model.variational: true and data.task: reconstruction",
        )
    generator = torch.Generator(model.latent.weight.device).manual_seed(options.seed)
    images = model.sample(options.samples, generator, options.temperature).cpu()
    path = Path(options.output) if options.output else run.dir / "plots" / f"samples-{options.seed}.png"
    image_grid(path, images, columns=max(1, round(math.sqrt(options.samples))))
    return {"path": str(path)}


# ---- text from a language model --------------------------------------------------------------------------------


class TextGenerationOptions(Options):
    """Sampling text from a language model."""

    prompt: str = "\n"
    """Text to continue."""
    max_tokens: int = Field(300, ge=1)
    """Tokens to generate."""
    temperature: float = Field(1.0, gt=0)
    """Divides the logits: below 1 is more conservative, above 1 more adventurous."""
    top_k: int | None = Field(None, ge=1)
    """Sample only among the k most likely tokens."""
    seed: Seed | None = None
    """Random seed, for repeatable samples; default: a different sample every time."""
    output: str | None = None
    """Also write the text to this file (it is printed either way)."""


def generate_text(run: Run, options: TextGenerationOptions) -> dict:
    """Continue `options.prompt` with the run's language model; {"text"} (and {"path"} with output)."""
    task = task_of(run.spec)
    if not task.causal:
        raise RunError(
            f"run {run.dir} is a {task.name} model, not a language model",
            "generate text from a run trained on data: {name: text}",
        )
    tokenizer = tokenizer_from_dict(run.data_record["preprocessing"]["tokenizer"])
    prompt = tokenizer.encode(options.prompt)
    if not prompt:
        raise RunError("the prompt is empty after tokenizing", "pass --prompt with some text")
    generator = torch.Generator()
    if options.seed is not None:
        generator.manual_seed(options.seed)
    else:
        generator.seed()
    model = run.model.eval()
    produce = rnn_tokens if run.config.model.name == "rnn" else transformer_tokens
    started = time.perf_counter()
    new = produce(model, prompt, options.max_tokens, options.temperature, options.top_k, generator)
    result: dict = {"text": tokenizer.decode(prompt + new), "tokens": len(new)}
    result["seconds"] = time.perf_counter() - started
    if options.output:
        try:
            atomic_write(Path(options.output), result["text"])
        except OSError as error:
            raise disk_error(error) or RunError(
                f"cannot write {options.output}: {error.strerror or error}", "pass --output with a file you can write"
            ) from None
        result["path"] = options.output
    return result


generators.add_function("autoencoder", generate_images, ImageGenerationOptions)
for _family in ("transformer", "moe", "rnn"):
    generators.add_function(_family, generate_text, TextGenerationOptions)
