import pytest

from kefu.llm.capacity import (
    GIB,
    SHAPES,
    capacity_table,
    kv_bytes_per_token,
    kv_token_capacity,
    max_concurrent_sequences,
    weight_bytes,
)

QWEN3_14B = SHAPES["qwen3-14b"]


def test_qwen3_14b_kv_is_160_kib_per_token_in_bf16() -> None:
    assert kv_bytes_per_token(QWEN3_14B) == 163_840 == 160 * 1024
    assert kv_bytes_per_token(QWEN3_14B, kv_dtype_bytes=1) == 80 * 1024


def test_weights() -> None:
    assert weight_bytes(QWEN3_14B, "bf16") == 29_600_000_000
    assert weight_bytes(QWEN3_14B, "fp8") == 14_800_000_000
    assert weight_bytes(QWEN3_14B, "awq") == pytest.approx(14.8e9 * 0.5 * 1.05)
    assert 27.5 < weight_bytes(QWEN3_14B, "bf16") / GIB < 27.7


def test_a100_40gb_figures() -> None:
    assert 25_000 <= kv_token_capacity(QWEN3_14B, 40, "bf16") <= 35_000
    assert 105_000 <= kv_token_capacity(QWEN3_14B, 40, "fp8") <= 125_000


def test_bf16_does_not_fit_a_24gb_gpu() -> None:
    assert kv_token_capacity(QWEN3_14B, 24, "bf16") == 0
    (row,) = [r for r in capacity_table({"RTX-4090-24GB": 24}) if r["weights"] == "bf16"]
    assert row["kv_tokens"] == 0
    assert row["fits"] is False
    assert row["sequences_at_8k"] == 0


def test_monotonic_in_gpu_size() -> None:
    for dtype in ("bf16", "fp8", "awq"):
        tokens = [kv_token_capacity(QWEN3_14B, gib, dtype) for gib in (24, 40, 48, 80, 141)]
        assert tokens == sorted(tokens)
        assert tokens[-1] > tokens[0]


def test_fp8_kv_doubles_tokens() -> None:
    for gib in (40, 80, 141):
        auto = kv_token_capacity(QWEN3_14B, gib, "fp8", kv_dtype="auto")
        fp8 = kv_token_capacity(QWEN3_14B, gib, "fp8", kv_dtype="fp8")
        assert auto > 0
        assert fp8 in (2 * auto, 2 * auto + 1)  # flooring


def test_unknown_dtypes_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown weight dtype 'int3'.*awq, bf16, fp8"):
        weight_bytes(QWEN3_14B, "int3")
    with pytest.raises(ValueError, match="unknown weight dtype 'fp16'"):
        kv_token_capacity(QWEN3_14B, 80, "fp16")
    with pytest.raises(ValueError, match="unknown kv dtype 'int8'"):
        kv_token_capacity(QWEN3_14B, 80, kv_dtype="int8")


def test_max_concurrent_sequences() -> None:
    assert max_concurrent_sequences(29_051, 8192) == 3
    assert max_concurrent_sequences(8191, 8192) == 0
    assert max_concurrent_sequences(0, 8192) == 0
    with pytest.raises(ValueError):
        max_concurrent_sequences(10, 0)


def test_capacity_table_covers_every_dtype_and_gpu() -> None:
    rows = capacity_table()
    assert len(rows) == 3 * 5
    assert {r["weights"] for r in rows} == {"bf16", "fp8", "awq"}
    a100 = {r["weights"]: r for r in rows if r["gpu"] == "A100-40GB"}
    assert a100["bf16"]["kv_tokens"] == kv_token_capacity(QWEN3_14B, 40, "bf16")
    assert a100["bf16"]["weights_gib"] == 27.6
    assert a100["bf16"]["sequences_at_8k"] == a100["bf16"]["kv_tokens"] // 8192
    assert a100["bf16"]["kv_tokens"] < a100["fp8"]["kv_tokens"] < a100["awq"]["kv_tokens"]
    assert all(r["fits"] for r in rows)


def test_other_shapes_per_token() -> None:
    assert kv_bytes_per_token(SHAPES["qwen3-8b"]) == 2 * 36 * 8 * 128 * 2
    assert kv_bytes_per_token(SHAPES["qwen3-32b"]) == 256 * 1024
