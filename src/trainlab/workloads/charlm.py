"""``charlm_gpt``: a small decoder-only transformer, character level, on a generated corpus.

Data: ``trainlab.workloads.corpus`` generates 1,000,000 training characters (seed 1) and
100,000 each for validation (seed 2) and test (seed 3), cached after the first generation.
``text_file=`` trains on a user's own UTF-8 text instead (split 90/5/5 in order). An *example*
is one non-overlapping window of ``context + 1`` characters, so data-selection methods can
score and pick examples; the per-example loss is the mean over its positions.

Model: pre-LayerNorm GPT (Radford et al., 2019 layout) with learned positions, 2 layers,
4 heads, width 64, context 64, tied input/output embeddings, causal scaled-dot-product
attention. Metric: validation bits per character (lower is better).

Target and budgets were chosen by measuring the ``nadamw`` baseline with its defaults on a
2-core CPU (step mode); ``trainlab targets`` refines them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainlab.nn_utils import soft_cross_entropy
from trainlab.registry import register_workload
from trainlab.spec import Batch, Target, TrainlabError
from trainlab.workloads import corpus
from trainlab.workloads.base import (
    ClassificationWorkload,
    Splits,
    cached_arrays,
    pool_batches,
    seeded_model,
)

CONTEXT = 64
TRAIN_CHARS, EVAL_CHARS, FRESH_CHARS = 1_000_000, 100_000, 2_000_000
MAX_EVAL_WINDOWS = 256


class CausalSelfAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, act: str, norm: str) -> None:
        super().__init__()
        self.ln1, self.ln2 = _norm(norm, width), _norm(norm, width)
        self.attn = CausalSelfAttention(width, heads)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width),
            nn.GELU() if act == "gelu" else nn.ReLU(),
            nn.Linear(4 * width, width),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _norm(kind: str, width: int) -> nn.Module:
    return nn.LayerNorm(width) if kind == "layernorm" else RMSNorm(width)


class GPT(nn.Module):
    def __init__(
        self, vocab: int, context: int = CONTEXT, width: int = 64, layers: int = 2, heads: int = 4,
        act: str = "gelu", norm: str = "layernorm",
    ) -> None:  # fmt: skip
        super().__init__()
        self.tok = nn.Embedding(vocab, width)
        self.pos = nn.Embedding(context, width)
        self.blocks = nn.Sequential(*(Block(width, heads, act, norm) for _ in range(layers)))
        self.ln_f = _norm(norm, width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.tok.weight  # tied embeddings
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, idx: Tensor) -> Tensor:
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.tok(idx) + self.pos(positions)
        return self.head(self.ln_f(self.blocks(x)))


def _windows(codes: Tensor, context: int) -> Tensor:
    """Non-overlapping windows of ``context + 1`` characters: ``[n, context + 1]``."""
    n = (len(codes) - 1) // context
    starts = torch.arange(n) * context
    return codes[starts.unsqueeze(1) + torch.arange(context + 1)]


def _generated_text() -> dict[str, np.ndarray]:
    def build() -> dict[str, np.ndarray]:
        texts = {
            "train": corpus.generate(TRAIN_CHARS, 1),
            "valid": corpus.generate(EVAL_CHARS, 2),
            "test": corpus.generate(EVAL_CHARS, 3),
        }
        return {
            k: np.frombuffer(v.encode("utf-8"), dtype=np.uint8).copy() for k, v in texts.items()
        }

    return cached_arrays("charlm_corpus_v1", build)


def _read_text_file(path: str | Path) -> dict[str, np.ndarray]:
    try:
        # universal newlines (\r\n and \r read as \n); a byte-order mark is dropped
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrainlabError(f"cannot read text file {path}: {exc}") from None
    if len(text) < 20 * (CONTEXT + 1):
        raise TrainlabError(
            f"text file {path} is too short ({len(text)} characters, need >= {20 * (CONTEXT + 1)})"
        )
    a, b = int(len(text) * 0.9), int(len(text) * 0.95)
    return {"train": text[:a], "valid": text[a:b], "test": text[b:]}


@register_workload("charlm_gpt")
class CharLM(ClassificationWorkload):
    name = "charlm_gpt"
    target = Target("bits_per_char", 1.0, higher_is_better=False)
    max_runtime = 180.0
    eval_period = 5.0
    step_hint = 1500
    eval_every_steps = 100
    batch_size_hint = 32
    generative = True
    variants = ("relu", "rmsnorm")
    eval_batch_size = 256
    act = "gelu"
    norm = "layernorm"
    #: transformer blocks of the model (a deeper or shallower copy: ``with_changes(n, layers=)``)
    layers = 2

    def __init__(self, device: str = "cpu", text_file: str | None = None) -> None:
        if text_file is None:
            raw = _generated_text()
            texts = {k: bytes(v).decode("utf-8") for k, v in raw.items()}
        else:
            texts = _read_text_file(text_file)
        self.alphabet = sorted(set("".join(texts.values())))
        lookup = {ch: i for i, ch in enumerate(self.alphabet)}

        def encode(s: str) -> Tensor:
            return torch.tensor([lookup[ch] for ch in s], dtype=torch.long)

        w = {k: _windows(encode(v), CONTEXT) for k, v in texts.items()}
        w["valid"], w["test"] = w["valid"][:MAX_EVAL_WINDOWS], w["test"][:MAX_EVAL_WINDOWS]
        # inputs are the first CONTEXT characters, targets the next-character shift
        self.splits = Splits(
            w["train"][:, :-1], w["train"][:, 1:], w["valid"][:, :-1], w["valid"][:, 1:],
            w["test"][:, :-1], w["test"][:, 1:],
        )  # fmt: skip
        self.text_file = text_file
        # capabilities follow from how the workload was built: a user's text has no generator
        # of fresh examples behind it
        self.generative = text_file is None
        self.to(device)

    def variant(self, name: str):
        if name == "relu":
            return self.with_changes(name, act="relu")
        if name == "rmsnorm":
            return self.with_changes(name, norm="rmsnorm")
        return super().variant(name)

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet)

    def describe(self) -> dict:
        out = super().describe()
        out["text_file"] = self.text_file
        out["alphabet_size"] = self.vocab_size
        out["train_characters"] = int(self.splits.x_train.numel() + self.train_size)
        return out

    def init_model(self, seed: int) -> nn.Module:
        return seeded_model(
            seed, lambda: GPT(self.vocab_size, layers=self.layers, act=self.act, norm=self.norm),
            self.device,
        )

    def loss_from_outputs(
        self,
        outputs: Tensor,
        batch: Batch,
        label_smoothing: float = 0.0,
        soft_targets: Tensor | None = None,
    ) -> Tensor:
        b, t, v = outputs.shape
        if soft_targets is not None:
            per_token = soft_cross_entropy(outputs, soft_targets)
        else:
            per_token = F.cross_entropy(
                outputs.reshape(b * t, v), batch.targets.reshape(b * t),
                reduction="none", label_smoothing=label_smoothing,
            ).view(b, t)  # fmt: skip
        return per_token.mean(1)

    def metrics(self, outputs: Tensor, targets: Tensor) -> dict[str, float]:
        loss = F.cross_entropy(outputs.flatten(0, 1).float(), targets.flatten()).item()
        accuracy = (outputs.argmax(-1) == targets).float().mean().item()
        return {"bits_per_char": loss / math.log(2), "loss": loss, "accuracy": accuracy}

    def fresh_batches(self, batch_size: int, seed: int) -> Iterator[Batch]:
        """Windows of a separately generated 2,000,000-character corpus (seed 4), generated and
        cached on first use; with a user's text file there is nothing fresh to generate."""
        if self.text_file is not None:
            return super().fresh_batches(batch_size, seed)

        def build() -> dict[str, np.ndarray]:
            text = corpus.generate(FRESH_CHARS, 4).encode("utf-8")
            return {"text": np.frombuffer(text, dtype=np.uint8).copy()}

        raw = cached_arrays("charlm_fresh_v1", build)
        lookup = {ch: i for i, ch in enumerate(self.alphabet)}
        codes = torch.tensor([lookup.get(ch, 0) for ch in bytes(raw["text"]).decode("utf-8")])
        windows = _windows(codes, CONTEXT).to(self.device)
        return pool_batches(windows[:, :-1], windows[:, 1:], batch_size, seed)
