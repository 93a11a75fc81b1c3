"""nanoGPT's baby GPT on tiny shakespeare: lamina against a plain PyTorch implementation of the same model and
training step (nanoGPT's model.py and train.py, condensed), in one process, alternating, so machine noise hits
both alike. Reports tokens per second of training for each, and the median ratio.

    .venv/bin/python bench/nanogpt_char.py [--rounds 5] [--steps 50] [--threads 1]
    .venv/bin/python bench/nanogpt_char.py --train     # also train the plain implementation for 2000 steps

The plain side: nanoGPT's GPT (LayerNorm/Linear without bias, GELU MLP, tied lm_head, N(0, 0.02) init with
scaled residual projections), its get_batch (random windows), AdamW over decayed ≥2-D / plain <2-D groups, its
get_lr (linear warmup, cosine to min_lr) and clip_grad_norm_(1.0).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ---- the plain implementation (nanoGPT, condensed) ---------------------------------------------------------


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=False)
        self.n_head = n_head

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=False)
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd, bias=False), nn.GELU(), nn.Linear(4 * n_embd, n_embd, bias=False)
        )

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, bias=False)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
        for name, parameter in self.named_parameters():
            if name.endswith("attn.c_proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    def forward(self, idx, targets=None):
        t = idx.size(1)
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


def nanogpt_optimizer(model: nn.Module, weight_decay: float, learning_rate: float, betas: tuple[float, float]):
    parameters = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in parameters if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas)


def nanogpt_lr(it: int, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, lr_decay_iters=2000) -> float:
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (learning_rate - min_lr)


def plain_steps(model, optimizer, data, first_step: int, steps: int, generator, block_size=64, batch_size=12):
    """nanoGPT's training iteration: get_batch, forward with loss, backward, clip, step."""
    model.train()
    for it in range(first_step, first_step + steps):
        for group in optimizer.param_groups:
            group["lr"] = nanogpt_lr(it)
        ix = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
        x = torch.stack([data[i : i + block_size] for i in ix])
        y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix])
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return float(loss)


@torch.no_grad()
def full_val_loss(model, data, block_size=64, batch=256) -> float:
    """Mean loss over every non-overlapping window of the val text (lamina's estimator)."""
    model.eval()
    starts = torch.arange(0, len(data) - block_size, block_size)
    total, count = 0.0, 0
    for chunk in starts.split(batch):
        index = chunk[:, None] + torch.arange(block_size)
        _, loss = model(data[index], data[index + 1])
        total, count = total + float(loss) * len(chunk), count + len(chunk)
    return total / count


@torch.no_grad()
def nanogpt_estimates(run_dir: str, repeats: int = 10) -> None:
    """The val loss of a trained lamina run as nanoGPT's estimate_loss measures it (the mean over `eval_iters`
    random batches of 12 windows), repeated with different random batches, beside lamina's full-split value."""
    import statistics

    from lamina import load_run
    from lamina.run import run_data

    run = load_run(run_dir)
    data = run_data(run.config)
    val = data.splits["val"]
    stream = torch.cat([val.inputs.reshape(-1), val.targets[-1, -1:]])  # the val text, rebuilt from its windows
    model, context = run.model.eval(), data.spec.input_shape[0]
    print(f"lamina (every val token once): {run.metrics['val']['loss']:.4f}")
    for eval_iters in (20, 200):
        estimates = []
        for repeat in range(repeats):
            generator = torch.Generator().manual_seed(repeat)
            starts = torch.randint(len(stream) - context, (eval_iters * 12,), generator=generator)
            index = starts[:, None] + torch.arange(context)
            logits = model(stream[index])
            targets = stream[index + 1].reshape(-1)
            estimates.append(float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets)))
        print(
            f"nanoGPT estimate_loss, eval_iters={eval_iters}, {repeats} draws: "
            f"mean {statistics.mean(estimates):.4f}, min {min(estimates):.4f}, max {max(estimates):.4f}"
        )


# ---- side by side ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "shakespeare_char_gpt.yaml"))
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "tinyshakespeare" / "input.txt"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50, help="training steps per timed round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train", action="store_true", help="train the plain implementation 2000 steps too")
    parser.add_argument("--estimate", metavar="RUN_DIR", help="only: nanoGPT's estimate_loss on a trained run")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    if arguments.estimate:
        return nanogpt_estimates(arguments.estimate)

    from lamina.config.loading import load_config
    from lamina.pipeline.prepare import prepare
    from lamina.training.loop import Loop
    from lamina.training.optimizers import build_optimizer

    overrides = {
        "data.path": arguments.data,
        "runtime.threads": arguments.threads,
        "data.windows_per_epoch": 12 * arguments.steps,
        "train.max_steps": None,
        "train.epochs": 1,
    }
    config = load_config(arguments.config, overrides)
    session = prepare(config)
    torch.set_num_threads(arguments.threads)
    text = Path(arguments.data).read_text()
    chars = sorted(set(text))
    encoded = torch.tensor([chars.index(c) for c in text], dtype=torch.long)
    split = int(0.9 * len(encoded))
    train_data, val_data = encoded[:split], encoded[split:]
    tokens_per_round = 12 * 64 * arguments.steps

    torch.manual_seed(1337)
    plain_model = GPT(len(chars), 64, 4, 4, 128)
    plain_optimizer = nanogpt_optimizer(plain_model, 0.1, 1e-3, (0.9, 0.99))
    generator = torch.Generator().manual_seed(1337)
    print(
        f"plain model: {sum(p.numel() for p in plain_model.parameters()):,} parameters; lamina: "
        f"{sum(p.numel() for p in session.model.parameters()):,}"
    )

    lamina_rates, plain_rates = [], []
    for round_index in range(arguments.rounds + 1):  # round 0 warms both up and is not counted
        model = copy.deepcopy(session.model)
        loop = Loop(
            model,
            session.data,
            session.objective,
            build_optimizer(session.config.train.optimizer, model),
            session.config.train,
            metric_names=session.metric_names,
            monitor=session.monitor,
            seed=round_index,
            callbacks=[],
        )
        started = time.perf_counter()
        loop._train_epoch(started)
        lamina_rate = tokens_per_round / (time.perf_counter() - started)
        started = time.perf_counter()
        plain_steps(plain_model, plain_optimizer, train_data, round_index * arguments.steps, arguments.steps, generator)
        plain_rate = tokens_per_round / (time.perf_counter() - started)
        if round_index:
            lamina_rates.append(lamina_rate)
            plain_rates.append(plain_rate)
            print(
                f"round {round_index}: lamina {lamina_rate:,.0f} tokens/s  plain {plain_rate:,.0f} tokens/s  "
                f"ratio {lamina_rate / plain_rate:.3f}",
                flush=True,
            )
    ratios = [a / b for a, b in zip(lamina_rates, plain_rates, strict=True)]
    print(
        f"\nbaby GPT (4 layers, 4 heads, 128 wide, context 64, batch 12), {arguments.steps} steps per round, "
        f"{arguments.threads} thread(s)"
    )
    print(
        f"median tokens/s: lamina {statistics.median(lamina_rates):,.0f}, plain PyTorch "
        f"{statistics.median(plain_rates):,.0f}; median ratio {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
    )

    if arguments.train:
        torch.manual_seed(1337)
        plain_model = GPT(len(chars), 64, 4, 4, 128)
        plain_optimizer = nanogpt_optimizer(plain_model, 0.1, 1e-3, (0.9, 0.99))
        generator = torch.Generator().manual_seed(1337)
        started = time.perf_counter()
        for first in range(0, 2000, 250):
            plain_steps(plain_model, plain_optimizer, train_data, first, 250, generator)
            print(f"plain step {first + 250}: val loss {full_val_loss(plain_model, val_data):.4f}", flush=True)
        print(
            f"plain PyTorch, 2000 steps: val loss {full_val_loss(plain_model, val_data):.4f} in "
            f"{time.perf_counter() - started:.1f}s (including 8 evaluations)"
        )


if __name__ == "__main__":
    main()
