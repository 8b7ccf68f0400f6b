#!/usr/bin/env bash
# Qwen3-14B with FP8 weights (~13.8 GiB): the pre-quantized Qwen/Qwen3-14B-FP8 checkpoint, whose config carries
# the quantization so vLLM needs no flag. Alternative: MODEL=Qwen/Qwen3-14B EXTRA_QUANT="--quantization fp8"
# quantizes the bf16 weights on load. Native FP8 matmuls need Ada/Hopper (L40S, H100, H200); on an A100 vLLM
# runs FP8 as weight-only (Marlin), which still halves weight memory: ~119k tokens of KV instead of ~29k.
set -euo pipefail

MODEL="${MODEL:-Qwen/Qwen3-14B-FP8}"
SERVED_MODEL_NAME="${SERVED_MODEL_NAME:-$MODEL}"
HOST="${HOST:-0.0.0.0}"
PORT="${PORT:-8000}"
MAX_MODEL_LEN="${MAX_MODEL_LEN:-32768}"  # the KV cache has room: ~3 whole 32k sequences even on an A100-40GB
GPU_MEMORY_UTILIZATION="${GPU_MEMORY_UTILIZATION:-0.90}"
TP="${TP:-1}"                             # 2 = tensor parallel over two GPUs
KV_CACHE_DTYPE="${KV_CACHE_DTYPE:-auto}"  # fp8 = FP8 KV cache as well, 2x the tokens again
EXTRA_QUANT="${EXTRA_QUANT:-}"            # "--quantization fp8" when MODEL is the bf16 checkpoint
: "${VLLM_API_KEY:?set VLLM_API_KEY (kefu sends it as KEFU_LLM_API_KEY)}"

# Flag reasons: see serve-bf16.sh. Prefix caching, the qwen3 reasoning parser and hermes tool calls matter for kefu.
# shellcheck disable=SC2086  # EXTRA_QUANT is deliberately word-split
exec vllm serve "$MODEL" \
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
  $EXTRA_QUANT \
  "$@"
