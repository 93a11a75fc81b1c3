"""Attribution over the tokens of a sequence model (text classifiers and language models), in embedding space.

Token ids cannot be interpolated, so every method works on the embeddings the model looks up: the model runs from
given embeddings (a forward hook replaces what its embedding layer returns; fastText's EmbeddingBag, which never
returns per-token vectors, is recomputed from its weights), and Captum attributes the class's log-probability to
each embedding vector (the log-odds of the class, `log_odds`); a token's score is the sum over its vector (Captum's LayerIntegratedGradients does the
same). The baseline is a token id at every position (the padding token for classifiers), looked up the same way.

    integrated_gradients  Captum IntegratedGradients from the baseline's embeddings to the input's (32 steps)
    gradient_x_input      (embedding − baseline embedding) · Captum's Saliency (the gradient at the input, signed)
    occlusion             Captum Occlusion: the log-odds lost when one token's embedding is the baseline's

The padding and the real tokens are told apart by the input ids, never by the embeddings, so the model reads the
same lengths and masks along the whole path.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lamina.core.errors import ModelError
from lamina.insight.methods import ClassScores
from lamina.models.output import split_output

__all__ = ["TOKEN_METHODS", "embedding_layer", "token_attributions", "log_odds", "token_texts"]

TOKEN_METHODS = ("integrated_gradients", "gradient_x_input", "occlusion")
STEPS = 32  # integration steps: the completeness gap (sum of scores vs. the change of the output) stays < 2 % here


def embedding_layer(model: nn.Module, name: str | None = None) -> nn.Module:
    """The token embedding of a sequence model: the module called `name`, else the first nn.Embedding or
    nn.EmbeddingBag (rnn and transformer: `embed`; fasttext: `embedding`)."""
    modules = dict(model.named_modules())
    if name is not None:
        if name not in modules:
            embeddings = [key for key, m in modules.items() if isinstance(m, nn.Embedding | nn.EmbeddingBag)]
            raise ModelError(
                f"the model has no layer {name!r}", f"name its token embedding: {', '.join(embeddings) or 'none'}"
            )
        return modules[name]
    for module in modules.values():
        if isinstance(module, nn.Embedding | nn.EmbeddingBag):
            return module
    raise ModelError(
        f"model {type(model).__name__} has no token embedding to attribute through",
        "token attributions need a model that reads token ids (rnn, transformer, fasttext)",
    )


def log_odds(outputs: Tensor, targets: Tensor, last_position: bool) -> Tensor:
    """(N,) log-odds log(p / (1 − p)) of class `targets` (N,) from a model's outputs: its logit against the
    logsumexp of the others' — unlike the log-probability it does not flatten out where the model is sure.
    `last_position`: per-step outputs (N, T, V) of a language model, read at the last position. One output
    (binary cross-entropy) is class 1's log-odds, and its negative class 0's.

    Example:
        >>> log_odds(torch.tensor([[2.0, 0.0]]), torch.tensor([0]), False)
        tensor([2.])
    """
    outputs = split_output(outputs)[0].float()
    if last_position:
        outputs = outputs[:, -1]  # (N, T, V) → (N, V)
    if outputs.shape[-1] == 1:
        return outputs[:, 0] * (2 * targets.to(outputs.dtype) - 1)
    chosen = F.one_hot(targets, outputs.shape[-1]).bool()  # (N, V)
    others = outputs.masked_fill(chosen, float("-inf")).logsumexp(dim=-1)
    return outputs.gather(1, targets[:, None]).squeeze(1) - others


def _from_embeddings(model: nn.Module, layer: nn.Module, last_position: bool) -> Callable[..., Tensor]:
    """forward(embeddings (N, T, E), ids (N, T), targets (N,)) → (N,) log-odds of the targets, the model reading
    `ids` with the given embeddings in place of its own lookup."""
    if isinstance(layer, nn.EmbeddingBag):  # fastText: the mean of the real tokens' vectors, then its head

        def forward(embeddings: Tensor, ids: Tensor, targets: Tensor) -> Tensor:
            real = (ids != layer.padding_idx).unsqueeze(-1).to(embeddings.dtype)  # (N, T, 1)
            mean = (embeddings * real).sum(dim=1) / real.sum(dim=1).clamp(min=1)  # (N, E)
            return log_odds(model.head(model.hidden(model.dropout(mean))), targets, last_position)

        return forward

    def forward(embeddings: Tensor, ids: Tensor, targets: Tensor) -> Tensor:
        handle = layer.register_forward_hook(lambda module, arguments, output: embeddings)
        try:
            return log_odds(model(ids), targets, last_position)
        finally:
            handle.remove()

    return forward


def _lookup(layer: nn.Module, ids: Tensor) -> Tensor:
    """(N, T) ids → (N, T, E) the layer's vector of each token."""
    return F.embedding(ids, layer.weight)


def token_attributions(
    model: nn.Module,
    ids: Tensor,
    baseline_ids: Tensor,
    targets: Tensor,
    method: str,
    last_position: bool = False,
    layer_name: str | None = None,
    pad_id: int | None = None,
    noise: tuple[float, int] | None = None,
) -> Tensor:
    """(N, T) score of each token position for the log-odds of `targets` (N,) — the class, or for a
    language model (`last_position`) the token predicted after the last position. Positive: towards the target.
    Positions holding `pad_id` score 0. `noise` (fraction, seed): seeded Gaussian noise of that fraction of the
    embeddings' standard deviation is added to the input's embeddings (the sanity check's self reference). A model
    wrapped for attribution (its `model` attribute, lamina/insight/methods.py ClassScores) is unwrapped: the
    log-odds are computed from the run's model itself.

    Example:
        >>> model = nn.Sequential(nn.Embedding(5, 3), nn.Flatten(), nn.Linear(6, 2))
        >>> token_attributions(model, torch.tensor([[1, 2]]), torch.zeros(1, 2, dtype=torch.long),
        ...                    torch.tensor([0]), "gradient_x_input").shape
        torch.Size([1, 2])
    """
    from captum.attr import IntegratedGradients, Occlusion, Saliency  # optional extra: explain

    model = model.model if isinstance(model, ClassScores) else model
    layer = embedding_layer(model, layer_name)
    forward = _from_embeddings(model, layer, last_position)
    with torch.no_grad():
        embeddings, baseline = _lookup(layer, ids), _lookup(layer, baseline_ids)  # (N, T, E) each
        if noise is not None:
            generator = torch.Generator().manual_seed(noise[1])
            jitter = torch.randn(embeddings.shape, generator=generator).to(embeddings.device, embeddings.dtype)
            embeddings = embeddings + jitter * noise[0] * embeddings.float().std()
    targets = targets.to(ids.device)
    if method == "integrated_gradients":
        scores = IntegratedGradients(forward).attribute(
            embeddings, baseline, None, (ids, targets), n_steps=STEPS, internal_batch_size=256
        )
        scores = scores.sum(dim=-1)
    elif method == "gradient_x_input":  # (x − x₀)·∇f(x): one right-hand Riemann step of the integral
        embeddings.requires_grad_()  # (Captum warns when it has to ask for the gradient itself)
        gradient = Saliency(forward).attribute(embeddings, None, abs=False, additional_forward_args=(ids, targets))
        scores = ((embeddings - baseline) * gradient).sum(dim=-1)
    elif method == "occlusion":
        width = embeddings.shape[-1]
        with torch.no_grad():
            scores = Occlusion(forward).attribute(
                embeddings, (1, width), (1, width), baseline, None, (ids, targets), perturbations_per_eval=16
            )
        scores = scores.mean(dim=-1)  # every feature of a token's vector holds the token's score
    else:
        raise ModelError(f"unknown token attribution method {method!r}", f"use one of {', '.join(TOKEN_METHODS)}")
    scores = scores.detach().float()
    if pad_id is not None:
        scores = scores.masked_fill(ids == pad_id, 0.0)
    return scores


def token_texts(tokenizer) -> list[str]:
    """The text of each token id of a run's tokenizer (lamina/data/tokenizers.py): characters as they are, byte-level
    BPE tokens decoded one by one (a leading space stays), fastText's hashed n-grams as '#n-gram 17' (a bucket
    holds every n-gram that hashes to it, so it cannot be read back as one string)."""
    vocabulary = getattr(tokenizer, "vocabulary", None)
    if vocabulary is not None:  # characters
        return list(vocabulary)
    words = getattr(tokenizer, "words", None)
    if words is not None:  # fastText n-grams: padding, the words, then the buckets
        return ["<pad>", *words, *(f"#n-gram {bucket}" for bucket in range(tokenizer.buckets))]
    inner = tokenizer.tokenizer  # BPE (HF tokenizers)
    texts = [inner.decode([index]) for index in range(tokenizer.size)]
    pad = tokenizer.pad_id
    if pad is not None:
        texts[pad] = "<pad>"
    return texts
