"""The vLLM latency model behind ``kefu llm simulate`` and ``bench/capacity.py``: the calibration points,
monotonicity, the KV-cache limit on concurrent sequences, prefix caching and FCFS queueing."""

from __future__ import annotations

import itertools

import pytest

from kefu.llm.sim_profiles import GPUS, PRECISIONS, ServingProfile, serving_profile
from kefu.llm.simulator import BLOCK_TOKENS, Engine, SimRequest, block_hashes, round_robin, run_engine
from kefu.loadtest.schedule import arrival_offsets

PROFILES = [serving_profile(g, p) for g, p in itertools.product(GPUS, PRECISIONS)]


def saturated_rps(gpu: str, precision: str = "bf16", prompt: int = 220, answer: int = 200) -> float:
    """Requests/s one engine completes when offered far more than it can take (ShareGPT-like by default)."""
    requests = [SimRequest(prompt, answer, arrival=t) for t in arrival_offsets(40, 400, seed=1)]
    run_engine(Engine(serving_profile(gpu, precision), prefix_caching=False), requests)
    return sum(1 for r in requests if 100 <= (r.finished_at or 0) <= 400) / 300


def test_h100_inter_token_latency_is_the_published_table() -> None:
    h100 = serving_profile("h100")
    for batch, ms in ((8, 12.5), (32, 15.0), (128, 26.2), (256, 38.4)):
        assert h100.decode_s(batch, context_tokens=batch * 300) * 1000 == pytest.approx(ms)


def test_a100_single_stream_and_prefill_match_the_published_figures() -> None:
    a100 = serving_profile("a100-80gb")
    alone = SimRequest(prompt_tokens=200, output_tokens=300)
    run_engine(Engine(a100), [alone])
    assert alone.itl is not None and 1 / alone.itl == pytest.approx(46, rel=0.01)
    assert a100.prefill_tokens_per_s == 7000
    assert a100.prefill_s(7000) == pytest.approx(1.0)


def test_a100_saturates_at_9_to_14_requests_per_second_with_sharegpt_like_traffic() -> None:
    a100 = saturated_rps("a100-80gb")
    assert 9 <= a100 <= 14
    assert 1.6 <= saturated_rps("h100") / a100 <= 2.5  # H100 roughly doubles an A100 at equal precision
    assert 1.2 <= saturated_rps("h100", "fp8") / saturated_rps("h100") <= 1.6  # vLLM: "up to 1.6x"


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"{p.gpu}-{p.precision}")
def test_step_time_grows_with_batch_context_and_prefill(profile: ServingProfile) -> None:
    by_batch = [profile.decode_s(b, b * 500) for b in range(1, 400)]
    assert all(a < b for a, b in itertools.pairwise(by_batch))
    by_context = [profile.decode_s(32, c) for c in range(0, 200_000, 8_000)]
    assert all(a <= b for a, b in itertools.pairwise(by_context)) and by_context[-1] > by_context[0]
    assert profile.step_s(16, 16_000, 0) < profile.step_s(16, 16_000, 512) < profile.step_s(16, 16_000, 4096)


@pytest.mark.parametrize("gpu", list(GPUS))
def test_time_to_first_token_grows_with_prompt_length(gpu: str) -> None:
    ttfts = []
    for prompt in (100, 500, 1000, 4000, 8000):
        request = SimRequest(prompt, 10)
        run_engine(Engine(serving_profile(gpu)), [request])
        ttfts.append(request.ttft)
    assert all(a is not None and b is not None and a < b for a, b in itertools.pairwise(ttfts))


def test_latency_grows_with_the_number_of_concurrent_requests() -> None:
    p90_ttft, mean_itl = [], []
    for rate in (1, 4, 8, 12, 16):
        requests = [SimRequest(955, 160, arrival=t) for t in arrival_offsets(rate, 120, seed=2)]
        run_engine(Engine(serving_profile("a100-80gb"), prefix_caching=False), requests)
        ttfts = sorted(r.ttft or 0 for r in requests)
        p90_ttft.append(ttfts[int(0.9 * len(ttfts))])
        mean_itl.append(sum(r.itl or 0 for r in requests) / len(requests))
    assert all(a < b for a, b in itertools.pairwise(mean_itl))
    assert all(a <= b for a, b in itertools.pairwise(p90_ttft))
    assert p90_ttft[-1] > 5 * p90_ttft[0]  # past saturation the queue, not the prompt, sets the wait


def test_the_kv_cache_bounds_concurrent_sequences_and_the_rest_queue() -> None:
    profile = serving_profile("a100-40gb", "bf16")  # ~29k KV tokens: ~26 sequences of 1,115 tokens
    engine = Engine(profile, prefix_caching=False)
    for _ in range(60):
        engine.submit(SimRequest(955, 160))
    most, now = 0, 0.0
    while (plan := engine.plan(now)) is not None:
        most = max(most, len(engine.running))
        assert engine.kv_used_tokens <= profile.kv_tokens
        now += plan.duration_s
        engine.finish(plan, now)
    assert most == profile.kv_tokens // (955 + 160) < 60


def test_prefix_caching_skips_the_shared_prompt_and_shortens_time_to_first_token() -> None:
    shared = list(range(600))

    def prompt(i: int) -> list[int]:
        return shared + [10_000 + 1000 * i + k for k in range(355)]

    results = {}
    for caching in (True, False):
        requests = [SimRequest(955, 20, block_hashes(prompt(i)), arrival=i * 1.0) for i in range(5)]
        run_engine(Engine(serving_profile("a100-80gb"), prefix_caching=caching), requests)
        results[caching] = requests
    first, later = results[True][0], results[True][1:]
    assert first.cached_tokens == 0
    assert all(r.cached_tokens == 600 // BLOCK_TOKENS * BLOCK_TOKENS for r in later)
    assert all(r.cached_tokens == 0 for r in results[False])
    assert all((c.ttft or 0) < (n.ttft or 0) for c, n in zip(later, results[False][1:], strict=True))


def test_block_hashes_are_equal_exactly_for_equal_prefixes() -> None:
    a = block_hashes(list(range(100)))
    b = block_hashes([*range(40), 999, *range(41, 100)])
    assert len(a) == 100 // BLOCK_TOKENS
    assert a[:2] == b[:2] and all(x != y for x, y in zip(a[2:], b[2:], strict=True))  # token 40 is in block 2


def test_cached_blocks_are_evicted_when_room_is_needed() -> None:
    profile = serving_profile("a100-40gb")
    engine = Engine(profile)
    seen = 0
    for i in range(80):  # distinct prompts: every finished one leaves its blocks in the cache
        request = SimRequest(955, 5, block_hashes([i * 10_000 + k for k in range(955)]), arrival=float(i))
        run_engine(engine, [request])
        seen += 1
        assert request.finished_at is not None and engine.kv_used_tokens <= profile.kv_tokens
    assert 0 < len(engine.cache) * BLOCK_TOKENS <= profile.kv_tokens < seen * 955


def test_an_aborted_request_frees_its_room() -> None:
    engine = Engine(serving_profile("h100"))
    request = SimRequest(2000, 500)
    engine.submit(request)
    plan = engine.plan(0.0)
    assert plan is not None and engine.reserved_tokens > 0
    engine.abort(request)
    assert engine.reserved_tokens == 0 and not engine.running and request.finished
    engine.finish(plan, plan.duration_s)
    assert request.first_token_at is None


def test_requests_that_can_never_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="exceed"):
        Engine(serving_profile("h100")).submit(SimRequest(16_000, 1000))


def test_round_robin_deals_in_turn() -> None:
    requests = [SimRequest(10, 1, arrival=i) for i in range(7)]
    dealt = round_robin(requests, 3)
    assert [len(d) for d in dealt] == [3, 2, 2] and dealt[1][0] is requests[1]


def test_fp8_holds_more_kv_and_is_not_slower() -> None:
    for gpu in GPUS:
        bf16, fp8 = serving_profile(gpu, "bf16"), serving_profile(gpu, "fp8")
        assert fp8.kv_tokens > bf16.kv_tokens
        assert fp8.decode_s(64, 64 * 500) < bf16.decode_s(64, 64 * 500)
        assert fp8.prefill_tokens_per_s >= bf16.prefill_tokens_per_s


def test_unknown_gpus_and_precisions_are_named() -> None:
    with pytest.raises(ValueError, match="unknown GPU 'v100'; expected one of: a100-40gb, a100-80gb, h100"):
        serving_profile("v100")
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        serving_profile("h100", "int4")
