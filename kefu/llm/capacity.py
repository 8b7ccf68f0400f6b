"""KV-cache arithmetic for serving a model with vLLM: how many tokens of KV cache fit on a GPU.

Pure arithmetic, not a measurement: vLLM profiles the real activation peak at start-up and logs
"GPU KV cache size: N tokens"; trust that log over these figures. Every size here uses
GiB = 2**30 bytes (what vLLM and nvidia-smi report); a GPU's ``gpu_gib`` is its nominal size read as GiB.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypedDict

GIB = 2**30


@dataclass(frozen=True)
class ModelShape:
    name: str
    layers: int
    kv_heads: int
    head_dim: int
    params_billion: float


# From each model's config.json on the Hugging Face hub (num_hidden_layers, num_key_value_heads,
# head_dim) and the parameter counts on the Qwen3 model cards; all three use GQA with 8 KV heads.
SHAPES: Mapping[str, ModelShape] = MappingProxyType(
    {
        "qwen3-8b": ModelShape("qwen3-8b", layers=36, kv_heads=8, head_dim=128, params_billion=8.2),
        "qwen3-14b": ModelShape("qwen3-14b", layers=40, kv_heads=8, head_dim=128, params_billion=14.8),
        "qwen3-32b": ModelShape("qwen3-32b", layers=64, kv_heads=8, head_dim=128, params_billion=32.8),
    }
)

# Bytes per parameter. AWQ is 4-bit (0.5 byte) plus ~5 % for the per-group scales and zero points.
# Simplification: real FP8/AWQ checkpoints keep the embeddings and lm_head in bf16, so they are somewhat larger.
WEIGHT_BYTES_PER_PARAM: Mapping[str, float] = MappingProxyType({"bf16": 2.0, "fp8": 1.0, "awq": 0.5 * 1.05})
# vLLM's --kv-cache-dtype: "auto" stores K/V in the activation dtype (bf16), "fp8" halves it.
KV_BYTES: Mapping[str, int] = MappingProxyType({"auto": 2, "fp8": 1})

# Activation peak + CUDA graphs + CUDA context / non-torch allocations, in GiB, taken out of the budget.
# 4.0 is what the commonly quoted Qwen3-14B-on-A100-40GB figures imply: ~30k bf16 tokens implies ~3.9 GiB and
# ~116k tokens with FP8 weights implies ~4.5 GiB; 4.0 gives ~29k and ~119k. It is also in line with a 14B
# model's profiled activation peak at vLLM's default 8k-token prefill chunk (~1.5-2.5 GiB) plus CUDA graphs.
OVERHEAD_GIB = 4.0

DEFAULT_GPUS: Mapping[str, float] = MappingProxyType(
    {"L40S-48GB": 48, "A100-40GB": 40, "A100-80GB": 80, "H100-80GB": 80, "H200-141GB": 141}
)


def _lookup(table: Mapping[str, float] | Mapping[str, int], key: str, what: str) -> float:
    if key not in table:
        raise ValueError(f"unknown {what} {key!r}; expected one of: {', '.join(sorted(table))}")
    return table[key]


def kv_bytes_per_token(shape: ModelShape, kv_dtype_bytes: int = 2) -> int:
    """K and V, for every layer and KV head: 2 x layers x kv_heads x head_dim x bytes."""
    return 2 * shape.layers * shape.kv_heads * shape.head_dim * kv_dtype_bytes


def weight_bytes(shape: ModelShape, weight_dtype: str) -> int:
    """Bytes of weights for ``weight_dtype`` in "bf16", "fp8" or "awq"; ValueError otherwise."""
    per_param = _lookup(WEIGHT_BYTES_PER_PARAM, weight_dtype, "weight dtype")
    return round(shape.params_billion * 1e9 * per_param)


def kv_token_capacity(
    shape: ModelShape,
    gpu_gib: float,
    weight_dtype: str = "bf16",
    kv_dtype: str = "auto",
    gpu_memory_utilization: float = 0.9,
    overhead_gib: float = OVERHEAD_GIB,
) -> int:
    """Tokens of KV cache that fit: (gpu x utilization - weights - overhead) / KV bytes per token, at least 0."""
    if not 0 < gpu_memory_utilization <= 1:
        raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}")
    per_token = kv_bytes_per_token(shape, int(_lookup(KV_BYTES, kv_dtype, "kv dtype")))
    free = gpu_gib * GIB * gpu_memory_utilization - weight_bytes(shape, weight_dtype) - overhead_gib * GIB
    return max(0, int(free // per_token))


def max_concurrent_sequences(tokens: int, max_model_len: int) -> int:
    """How many sequences of the full ``max_model_len`` fit at once (shorter ones share more)."""
    if max_model_len <= 0:
        raise ValueError(f"max_model_len must be positive, got {max_model_len}")
    return max(0, tokens) // max_model_len


class CapacityRow(TypedDict):
    gpu: str
    weights: str
    weights_gib: float
    kv_tokens: int
    fits: bool
    sequences_at_8k: int


def capacity_table(
    gpus: Mapping[str, float] = DEFAULT_GPUS,
    model: str = "qwen3-14b",
    gpu_memory_utilization: float = 0.9,
) -> list[CapacityRow]:
    """One row per weight dtype (bf16, fp8, awq) x GPU. ``fits``: the weights alone fit in gpu x utilization."""
    shape = SHAPES[model]
    rows: list[CapacityRow] = []
    for dtype in ("bf16", "fp8", "awq"):
        for gpu, gib in gpus.items():
            weights = weight_bytes(shape, dtype)
            tokens = kv_token_capacity(shape, gib, dtype, gpu_memory_utilization=gpu_memory_utilization)
            rows.append(
                CapacityRow(
                    gpu=gpu,
                    weights=dtype,
                    weights_gib=round(weights / GIB, 1),
                    kv_tokens=tokens,
                    fits=weights <= gib * GIB * gpu_memory_utilization,
                    sequences_at_8k=max_concurrent_sequences(tokens, 8192),
                )
            )
    return rows
