#!/usr/bin/env bash
# Qwen3-14B, 4-bit AWQ (Qwen/Qwen3-14B-AWQ, ~7-10 GiB of weights) with the Marlin kernels (Ampere and newer).
# The smallest footprint: fits a 24 GB GPU and leaves the most KV cache; 4-bit costs some answer quality,
# so evaluate it on kefu's benchmarks before promoting it.
set -euo pipefail

MODEL="${MODEL:-Qwen/Qwen3-14B-AWQ}"
SERVED_MODEL_NAME="${SERVED_MODEL_NAME:-$MODEL}"
HOST="${HOST:-0.0.0.0}"
PORT="${PORT:-8000}"
MAX_MODEL_LEN="${MAX_MODEL_LEN:-32768}"
GPU_MEMORY_UTILIZATION="${GPU_MEMORY_UTILIZATION:-0.90}"
TP="${TP:-1}"                             # 2 = tensor parallel over two GPUs
KV_CACHE_DTYPE="${KV_CACHE_DTYPE:-auto}"  # fp8 halves KV bytes per token
: "${VLLM_API_KEY:?set VLLM_API_KEY (kefu sends it as KEFU_LLM_API_KEY)}"

# --quantization awq_marlin   the fast Marlin kernels for AWQ checkpoints (plain "awq" is much slower)
# Other flag reasons: see serve-bf16.sh.
exec vllm serve "$MODEL" \
  --quantization awq_marlin \
  --served-model-name "$SERVED_MODEL_NAME" \
  --host "$HOST" --port "$PORT" \
  --api-key "$VLLM_API_KEY" \
  --max-model-len "$MAX_MODEL_LEN" \
  --gpu-memory-utilization "$GPU_MEMORY_UTILIZATION" \
  --tensor-parallel-size "$TP" \
  --kv-cache-dtype "$KV_CACHE_DTYPE" \
  --enable-prefix-caching \
  --reasoning-parser qwen3 \
  --enable-auto-tool-choice --tool-call-parser hermes \
  "$@"
