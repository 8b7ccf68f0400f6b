#!/usr/bin/env bash
# Qwen3-14B (bf16) plus a LoRA adapter fine-tuned for support, served under the name "support": kefu asks for
# model "support" to get base + adapter, or for "$SERVED_MODEL_NAME" to get the base model alone.
# The adapter directory holds adapter_config.json and adapter_model.safetensors (PEFT format).
set -euo pipefail

MODEL="${MODEL:-Qwen/Qwen3-14B}"
SERVED_MODEL_NAME="${SERVED_MODEL_NAME:-$MODEL}"
HOST="${HOST:-0.0.0.0}"
PORT="${PORT:-8000}"
MAX_MODEL_LEN="${MAX_MODEL_LEN:-16384}"
GPU_MEMORY_UTILIZATION="${GPU_MEMORY_UTILIZATION:-0.90}"
TP="${TP:-1}"                             # 2 = tensor parallel over two GPUs
KV_CACHE_DTYPE="${KV_CACHE_DTYPE:-auto}"
LORA_NAME="${LORA_NAME:-support}"
LORA_PATH="${LORA_PATH:-/adapters/support}"
MAX_LORA_RANK="${MAX_LORA_RANK:-64}"      # must be >= the adapter's r; larger reserves more memory
: "${VLLM_API_KEY:?set VLLM_API_KEY (kefu sends it as KEFU_LLM_API_KEY)}"

# --enable-lora                 serve adapters on top of the shared base weights
# --lora-modules NAME=PATH      the adapter, requested as model NAME
# --max-lora-rank 64            the largest adapter rank vLLM reserves room for
# Other flag reasons: see serve-bf16.sh.
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
  --enable-lora \
  --lora-modules "$LORA_NAME=$LORA_PATH" \
  --max-lora-rank "$MAX_LORA_RANK" \
  "$@"
