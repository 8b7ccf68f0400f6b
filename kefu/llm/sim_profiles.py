"""How fast vLLM serves Qwen3-14B on one GPU: the latency model behind ``kefu llm simulate`` and
``bench/capacity.py``, calibrated on published figures. Arithmetic, not a measurement: check it against
``vllm bench serve`` on the real card before buying hardware with it.

One engine step runs every decoding sequence once (one token each) plus a chunk of waiting prompts
(chunked prefill), so a step takes

    step = decode(B) + attention(context beyond 512 tokens) + prefill tokens / prefill rate

``decode(B)`` interpolates a table of inter-token latency by batch size B (linear between points, linear
extrapolation beyond the last). The attention term reads the KV cache of each sequence's context beyond the
512 tokens the calibration runs had (KV bytes per token from ``kefu.llm.capacity`` / (HBM bandwidth x 0.8)).
KV-cache capacity (how many tokens may be in flight) comes from ``kefu.llm.capacity.kv_token_capacity``.

Calibration (bf16 weights and KV cache, vLLM defaults, one GPU, no tensor parallelism). Each entry: the
published figure, what it sets here, and where it comes from.

1. H100 inter-token latency by batch size: 12.5 ms at 8, 15.0 at 32, 26.2 at 128, 38.4 at 256. Used as the
   H100 ``decode(B)`` table as is; batch 1 is extrapolated linearly from 8 and 32 (11.77 ms). Source: the
   vLLM serving figures quoted in issue 8.
2. A100-80GB single stream for a 14B bf16 model: ~46 tokens/s. Sets the A100-80GB ``decode(1)`` to
   1000 / 46 = 21.74 ms. Source: issue 8; consistent with the HBM roofline (29.6 GB of weights read per
   token / 2.04 TB/s = 14.5 ms, plus kernel overheads).
3. One A100 saturated by ShareGPT-like traffic (~220 prompt and ~200 answer tokens): ~9-14 requests/s.
   The A100 curve grows with batch size like the H100's, times 1.8, so that this load saturates one
   A100-80GB at ~11.7 requests/s (checked in ``tests/llm/test_simulator.py``). Source: issue 8; vLLM's
   ShareGPT benchmarks of 13B models on one A100.
4. A100 prefill: ~7,000 tokens/s. Source: issue 8; the compute roofline agrees (312 TFLOPS x ~0.65
   utilisation / 29.6 GFLOP per token = 6,900 tokens/s).
5. H100 prefill: A100's x 2.2 = 15,400 tokens/s. Source: NVIDIA's TensorRT-LLM blog "H100 has 4.6x A100
   Performance": 4.4x faster first token with H100 FP8 against A100 FP16, of which FP8 gives ~2x (MLPerf:
   2x at the same data type).
6. HBM bandwidth: A100-40GB 1.555 TB/s, A100-80GB 2.039 TB/s, H100 SXM 3.35 TB/s (NVIDIA data sheets).
   Sets the attention term, and the A100-40GB ``decode(1)``: the A100-80GB's x 2.039 / 1.555.
7. FP8: "a 2x reduction in model memory requirements and up to a 1.6x improvement in throughput" (vLLM
   docs, FP8 W8A8, docs.vllm.ai/en/stable/features/quantization/fp8/). On H100 (FP8 tensor cores, W8A8):
   ``decode(1)`` x 0.6 (half the weight bytes; fixed overheads stay), growth with batch x 0.75, prefill x 1.6.
   On A100 (weight-only W8A16 through the FP8 Marlin kernels): ``decode(1)`` x 0.6, the rest unchanged.

Scheduler limits: vLLM's ``max_num_seqs`` 256 and ``max_num_batched_tokens`` 8192 (the token budget of one
step); recent vLLM versions pick other defaults by GPU memory: pass what your server logs.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from kefu.llm.capacity import KV_BYTES, SHAPES, kv_bytes_per_token, kv_token_capacity

MODEL = "qwen3-14b"
PRECISIONS: tuple[str, ...] = ("bf16", "fp8")
ATTENTION_FREE_CONTEXT = 512  # tokens of context per sequence already inside the calibration figures
ATTENTION_EFFICIENCY = 0.8  # share of HBM bandwidth an attention kernel reaches

# H100 figures as published; batch 1 extrapolated linearly from batch 8 and 32.
_H100_ITL_MS: tuple[tuple[int, float], ...] = ((1, 11.77), (8, 12.5), (32, 15.0), (128, 26.2), (256, 38.4))
A100_80GB_SINGLE_STREAM_TPS = 46.0
A100_GROWTH_VS_H100 = 1.8  # chosen so a ShareGPT-like load saturates one A100-80GB at ~11.7 requests/s
A100_PREFILL_TPS = 7000.0
H100_PREFILL_VS_A100 = 2.2


@dataclass(frozen=True)
class CalibrationPoint:
    figure: str
    value: str
    sets: str
    source: str


# The calibration list of the module docstring as data, for docs/capacity.md (bench/capacity_doc.py).
CALIBRATION: tuple[CalibrationPoint, ...] = (
    CalibrationPoint(
        "H100 inter-token latency by batch", "12.5 ms at 8, 15.0 at 32, 26.2 at 128, 38.4 at 256",
        "the H100 decode table as is (batch 1: 11.77 ms, extrapolated from 8 and 32)",
        "vLLM serving figures quoted in issue 8",
    ),
    CalibrationPoint(
        "A100-80GB single stream, 14B bf16", "~46 tokens/s", "A100-80GB decode at batch 1: 21.74 ms",
        "issue 8; HBM roofline: 29.6 GB of weights / 2.04 TB/s = 14.5 ms per token plus overheads",
    ),
    CalibrationPoint(
        "one A100 saturated by ShareGPT-like traffic (220 prompt / 200 answer tokens)", "~9-14 requests/s",
        "A100 growth with batch = H100's x 1.8: saturates one A100-80GB at ~11.7 requests/s (a test checks 9-14)",
        "issue 8; vLLM's ShareGPT benchmarks of 13B models on one A100",
    ),
    CalibrationPoint(
        "A100 prefill", "~7,000 tokens/s", "A100 prefill rate",
        "issue 8; compute roofline 312 TFLOPS x ~0.65 / 29.6 GFLOP per token = 6,900",
    ),
    CalibrationPoint(
        "H100 prefill", "A100 x 2.2 = 15,400 tokens/s", "H100 prefill rate",
        "NVIDIA TensorRT-LLM blog 'H100 has 4.6x A100 Performance': 4.4x first token, ~2x of it from FP8",
    ),
    CalibrationPoint(
        "HBM bandwidth", "A100-40GB 1.555, A100-80GB 2.039, H100 SXM 3.35 TB/s",
        "attention term; A100-40GB batch-1 decode = A100-80GB's x 2.039 / 1.555", "NVIDIA data sheets",
    ),
    CalibrationPoint(
        "FP8 weights", "2x smaller weights, 'up to a 1.6x improvement in throughput'",
        "H100 (W8A8): batch-1 time x 0.6, growth x 0.75, prefill x 1.6; A100 (W8A16 Marlin): batch-1 time x 0.6",
        "vLLM docs, FP8 W8A8 (docs.vllm.ai/en/stable/features/quantization/fp8/)",
    ),
    CalibrationPoint(
        "KV cache", "160 KiB per token in bf16; (GPU x 0.9 - weights - 4 GiB) / 160 KiB tokens",
        "how many sequences fit at once", "kefu/llm/capacity.py, deploy/vllm/README.md",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class GpuSpec:
    name: str
    memory_gib: float
    hbm_tb_s: float
    itl_ms: tuple[tuple[int, float], ...]  # bf16 inter-token latency by batch size
    prefill_tokens_per_s: float  # bf16
    native_fp8: bool  # FP8 tensor cores (Hopper): FP8 also speeds up compute, not only weight reads


def _shifted(points: Sequence[tuple[int, float]], base_ms: float, growth: float) -> tuple[tuple[int, float], ...]:
    """The curve's shape (growth over its batch-1 value) times ``growth``, starting at ``base_ms``."""
    first = points[0][1]
    return tuple((batch, round(base_ms + growth * (ms - first), 3)) for batch, ms in points)


_A100_80_ITL = _shifted(_H100_ITL_MS, 1000.0 / A100_80GB_SINGLE_STREAM_TPS, A100_GROWTH_VS_H100)

GPUS: Mapping[str, GpuSpec] = MappingProxyType(
    {
        "a100-40gb": GpuSpec(
            "a100-40gb", 40, 1.555, _shifted(_A100_80_ITL, _A100_80_ITL[0][1] * 2.039 / 1.555, 1.0),
            A100_PREFILL_TPS, native_fp8=False,
        ),
        "a100-80gb": GpuSpec("a100-80gb", 80, 2.039, _A100_80_ITL, A100_PREFILL_TPS, native_fp8=False),
        "h100": GpuSpec(
            "h100", 80, 3.35, _H100_ITL_MS, A100_PREFILL_TPS * H100_PREFILL_VS_A100, native_fp8=True
        ),
    }
)  # fmt: skip

# (batch-1 latency, growth with batch, prefill rate) multipliers for FP8 weights.
_FP8_NATIVE = (0.6, 0.75, 1.6)
_FP8_WEIGHT_ONLY = (0.6, 1.0, 1.0)


@dataclass(frozen=True)
class ServingProfile:
    """One vLLM engine (one GPU) serving Qwen3-14B: step times and memory limits."""

    gpu: str
    precision: str
    itl_ms: tuple[tuple[int, float], ...]
    prefill_tokens_per_s: float
    kv_tokens: int
    kv_bytes_per_token: int
    hbm_bytes_per_s: float
    max_num_seqs: int = 256
    max_batched_tokens: int = 8192
    max_model_len: int = 16384

    def decode_s(self, batch: int, context_tokens: int = 0) -> float:
        """One decode step of ``batch`` sequences holding ``context_tokens`` in all; 0 for an empty batch."""
        if batch <= 0:
            return 0.0
        extra_context = max(0, context_tokens - batch * ATTENTION_FREE_CONTEXT)
        attention = extra_context * self.kv_bytes_per_token / (self.hbm_bytes_per_s * ATTENTION_EFFICIENCY)
        return _interpolate(self.itl_ms, batch) / 1000.0 + attention

    def prefill_s(self, tokens: int) -> float:
        return max(0, tokens) / self.prefill_tokens_per_s

    def step_s(self, batch: int, context_tokens: int, prefill_tokens: int) -> float:
        """A step with ``batch`` decoding sequences and ``prefill_tokens`` prompt tokens computed; a
        prefill-only step still reads the weights once (the batch-1 decode time)."""
        decode = self.decode_s(batch, context_tokens) if batch else (self.itl_ms[0][1] / 1000.0)
        return decode + self.prefill_s(prefill_tokens)


def _interpolate(points: Sequence[tuple[int, float]], batch: int) -> float:
    batches = [b for b, _ in points]
    i = bisect.bisect_left(batches, batch)
    if i < len(points) and batches[i] == batch:
        return points[i][1]
    lo, hi = (i - 1, i) if 0 < i < len(points) else ((0, 1) if i == 0 else (len(points) - 2, len(points) - 1))
    (b0, t0), (b1, t1) = points[lo], points[hi]
    return t0 + (t1 - t0) * (batch - b0) / (b1 - b0)


def serving_profile(
    gpu: str,
    precision: str = "bf16",
    *,
    gpu_memory_utilization: float = 0.9,
    kv_dtype: str = "auto",
    max_num_seqs: int = 256,
    max_batched_tokens: int = 8192,
) -> ServingProfile:
    """The profile of one GPU; ``ValueError`` names the choices for an unknown GPU or precision."""
    spec = GPUS.get(gpu)
    if spec is None:
        raise ValueError(f"unknown GPU {gpu!r}; expected one of: {', '.join(GPUS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of: {', '.join(PRECISIONS)}")
    points, prefill = spec.itl_ms, spec.prefill_tokens_per_s
    if precision == "fp8":
        base, growth, faster_prefill = _FP8_NATIVE if spec.native_fp8 else _FP8_WEIGHT_ONLY
        points = _shifted(points, points[0][1] * base, growth)
        prefill *= faster_prefill
    shape = SHAPES[MODEL]
    return ServingProfile(
        gpu=gpu,
        precision=precision,
        itl_ms=points,
        prefill_tokens_per_s=prefill,
        kv_tokens=kv_token_capacity(shape, spec.memory_gib, precision, kv_dtype, gpu_memory_utilization),
        kv_bytes_per_token=kv_bytes_per_token(shape, KV_BYTES[kv_dtype]),
        hbm_bytes_per_s=spec.hbm_tb_s * 1e12,
        max_num_seqs=max_num_seqs,
        max_batched_tokens=max_batched_tokens,
    )
