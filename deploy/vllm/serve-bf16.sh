#!/usr/bin/env bash
# Qwen3-14B in bf16 (~27.6 GiB of weights). Needs a 48 GB+ GPU for useful concurrency; on an A100-40GB it
# leaves only ~29k tokens of KV cache (see README.md, "Memory arithmetic"). Every variable can be overridden:
#   VLLM_API_KEY=... MAX_MODEL_LEN=32768 TP=2 ./serve-bf16.sh
set -euo pipefail

MODEL="${MODEL:-Qwen/Qwen3-14B}"
SERVED_MODEL_NAME="${SERVED_MODEL_NAME:-$MODEL}"
HOST="${HOST:-0.0.0.0}"
PORT="${PORT:-8000}"
MAX_MODEL_LEN="${MAX_MODEL_LEN:-16384}"
GPU_MEMORY_UTILIZATION="${GPU_MEMORY_UTILIZATION:-0.90}"
TP="${TP:-1}"                             # 2 = tensor parallel over two GPUs (weights and KV split across both)
KV_CACHE_DTYPE="${KV_CACHE_DTYPE:-auto}"  # fp8 halves KV bytes per token (2x the tokens); check quality first
: "${VLLM_API_KEY:?set VLLM_API_KEY (kefu sends it as KEFU_LLM_API_KEY)}"

# --enable-prefix-caching         reuse KV blocks of the byte-stable prefix kefu puts first (system prompt, tools)
# --max-model-len                 cap per-sequence context so the KV cache holds several whole sequences
# --gpu-memory-utilization 0.90   share of GPU memory vLLM takes for weights + activations + KV cache
# --reasoning-parser qwen3        moves <think> text out of `content` into the separate reasoning field
# --enable-auto-tool-choice       lets the model decide to call tools (kefu sends tool_choice "auto")
# --tool-call-parser hermes       Qwen3 emits Hermes-style <tool_call> JSON; this turns it into tool_calls
# --served-model-name             the name kefu puts in "model" (KEFU_LLM_MODEL)
# --api-key                       requests without "Authorization: Bearer $VLLM_API_KEY" get 401
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
  "$@"
