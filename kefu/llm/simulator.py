"""A model of vLLM's continuous batching: one engine per GPU, step by step, in simulated time.

The same engine runs behind ``kefu llm simulate`` (driven by the wall clock, see ``sim_server``) and in
``bench/capacity.py`` (driven by :func:`run_engine` in virtual time, thousands of times faster), so the
capacity tables and the load tests come from one set of functions.

What it models, after vLLM V1's scheduler:
* FCFS admission: a waiting request starts when a sequence slot (``max_num_seqs``) and KV-cache room for
  its prompt and its answer are free; the head of the queue blocks the rest (no preemption is modelled:
  room for the whole answer is reserved at admission, which is what preemption converges to).
* Each step decodes one token of every running sequence and spends the rest of the step's token budget
  (``max_batched_tokens``) on prompt chunks, oldest first (chunked prefill). A request's first token comes
  at the end of the step that finishes its prompt.
* Automatic prefix caching: prompts are hashed in 16-token blocks (each hash chains the previous one, as
  vLLM's do); blocks already cached are not computed again. Cached blocks live in the KV cache, are shared
  by every sequence using them and are evicted least-recently-used once no running sequence holds them.

Step times come from :class:`kefu.llm.sim_profiles.ServingProfile` (see its calibration table).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kefu.llm.sim_profiles import ServingProfile

BLOCK_TOKENS = 16  # vLLM's KV block size


def block_hashes(token_ids: Sequence[int]) -> tuple[int, ...]:
    """One hash per full 16-token block; each includes the hash before it, so equal hashes mean equal prefixes."""
    hashes: list[int] = []
    previous = 0
    for start in range(0, len(token_ids) - BLOCK_TOKENS + 1, BLOCK_TOKENS):
        previous = hash((previous, tuple(token_ids[start : start + BLOCK_TOKENS])))
        hashes.append(previous)
    return tuple(hashes)


@dataclass(eq=False, slots=True)
class SimRequest:
    """One request: what it asks for (prompt and answer lengths, prompt block hashes) and, once the engine
    has run it, when each thing happened (seconds on the driver's clock)."""

    prompt_tokens: int
    output_tokens: int  # tokens it will generate (the answer's length, already capped by max_tokens)
    blocks: tuple[int, ...] = ()
    arrival: float = 0.0
    cached_tokens: int = 0
    prefilled: int = 0
    generated: int = 0
    reserved: int = 0  # KV tokens held outside the shared prefix cache
    admitted_at: float | None = None
    first_token_at: float | None = None
    finished_at: float | None = None
    aborted: bool = False

    @property
    def finished(self) -> bool:
        return self.finished_at is not None or self.aborted

    @property
    def ttft(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.arrival

    @property
    def itl(self) -> float | None:
        """Mean time between tokens after the first."""
        if self.finished_at is None or self.first_token_at is None or self.generated < 2:
            return None
        return (self.finished_at - self.first_token_at) / (self.generated - 1)

    @property
    def context(self) -> int:
        return self.prompt_tokens + self.generated


class PrefixCache:
    """Cached prompt blocks, least recently used first, each with the number of running sequences using it."""

    def __init__(self) -> None:
        self._refs: OrderedDict[int, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._refs)

    def match(self, hashes: Sequence[int]) -> int:
        """How many leading blocks are cached."""
        n = 0
        for h in hashes:
            if h not in self._refs:
                break
            n += 1
        return n

    def acquire(self, hashes: Iterable[int]) -> int:
        """Hold every block (caching the new ones); returns how many blocks were new."""
        new = 0
        for h in hashes:
            refs = self._refs.get(h)
            if refs is None:
                new += 1
                refs = 0
            self._refs[h] = refs + 1
            self._refs.move_to_end(h)
        return new

    def release(self, hashes: Iterable[int]) -> None:
        for h in hashes:
            if h in self._refs:
                self._refs[h] -= 1

    def evict(self, blocks: int) -> int:
        """Drop up to ``blocks`` unheld blocks, least recently used first; returns how many went."""
        victims = [h for h, refs in self._refs.items() if refs <= 0][:blocks]
        for h in victims:
            del self._refs[h]
        return len(victims)


@dataclass(slots=True)
class StepPlan:
    decode: list[SimRequest]
    prefill: list[tuple[SimRequest, int]]  # (request, prompt tokens computed in this step)
    duration_s: float


@dataclass
class Engine:
    """One vLLM engine on one GPU. Call :meth:`submit`, then alternate :meth:`plan` and :meth:`finish`."""

    profile: ServingProfile
    prefix_caching: bool = True
    waiting: deque[SimRequest] = field(default_factory=deque)
    running: list[SimRequest] = field(default_factory=list)
    cache: PrefixCache = field(default_factory=PrefixCache)
    reserved_tokens: int = 0
    steps: int = 0
    busy_s: float = 0.0

    @property
    def kv_used_tokens(self) -> int:
        return self.reserved_tokens + len(self.cache) * BLOCK_TOKENS

    @property
    def load(self) -> int:
        return len(self.waiting) + len(self.running)

    def submit(self, request: SimRequest) -> None:
        limit = min(self.profile.max_model_len, self.profile.kv_tokens)
        if request.prompt_tokens + request.output_tokens > limit:
            raise ValueError(
                f"prompt {request.prompt_tokens} + answer {request.output_tokens} tokens exceed the "
                f"{limit}-token limit of one sequence"
            )
        self.waiting.append(request)

    def abort(self, request: SimRequest) -> None:
        """The client went away: free what the request holds."""
        if request.finished:
            return
        request.aborted = True
        if request in self.waiting:
            self.waiting.remove(request)
        if request in self.running:
            self.running.remove(request)
            self._free(request)

    def _admit(self, request: SimRequest, now: float) -> bool:
        blocks = request.blocks if self.prefix_caching else ()
        cached_blocks = self.cache.match(blocks)
        private = request.prompt_tokens - len(blocks) * BLOCK_TOKENS + request.output_tokens
        need = (len(blocks) - cached_blocks) * BLOCK_TOKENS + private
        short = need - (self.profile.kv_tokens - self.kv_used_tokens)
        if short > 0:
            self.cache.evict(-(-short // BLOCK_TOKENS))
            if need > self.profile.kv_tokens - self.kv_used_tokens:
                return False
        self.cache.acquire(blocks)
        request.reserved = private
        self.reserved_tokens += private
        # vLLM always computes at least the last prompt token (its logits give the first answer token).
        request.cached_tokens = min(cached_blocks * BLOCK_TOKENS, request.prompt_tokens - 1)
        request.prefilled = request.cached_tokens
        request.admitted_at = now
        self.running.append(request)
        return True

    def _free(self, request: SimRequest) -> None:
        self.reserved_tokens -= request.reserved
        request.reserved = 0
        if self.prefix_caching:
            self.cache.release(request.blocks)

    def plan(self, now: float) -> StepPlan | None:
        """What the next step computes, and how long it takes; None when there is nothing to do."""
        while self.waiting and len(self.running) < self.profile.max_num_seqs:
            if not self._admit(self.waiting[0], now):
                break  # FCFS: the head waits for room, and so does everyone behind it
            self.waiting.popleft()
        decode = [r for r in self.running if r.prefilled >= r.prompt_tokens]
        budget = self.profile.max_batched_tokens - len(decode)
        prefill: list[tuple[SimRequest, int]] = []
        for request in self.running:
            if budget <= 0:
                break
            left = request.prompt_tokens - request.prefilled
            if left > 0:
                chunk = min(left, budget)
                prefill.append((request, chunk))
                budget -= chunk
        if not decode and not prefill:
            return None
        context = sum(r.context for r in decode)
        duration = self.profile.step_s(len(decode), context, sum(chunk for _, chunk in prefill))
        return StepPlan(decode, prefill, duration)

    def finish(self, plan: StepPlan, now: float) -> list[SimRequest]:
        """Apply a planned step that ended at ``now``; returns the requests that got a token."""
        self.steps += 1
        self.busy_s += plan.duration_s
        touched: list[SimRequest] = []
        for request in plan.decode:
            if not request.aborted:
                request.generated += 1
                touched.append(request)
        for request, chunk in plan.prefill:
            if request.aborted:
                continue
            request.prefilled += chunk
            if request.prefilled >= request.prompt_tokens:
                request.generated = 1
                request.first_token_at = now
                touched.append(request)
        for request in touched:
            if request.generated >= request.output_tokens:
                request.finished_at = now
                self.running.remove(request)
                self._free(request)
        return touched


def run_engine(engine: Engine, requests: Sequence[SimRequest]) -> float:
    """Run ``requests`` (sorted by arrival) through ``engine`` in virtual time until all are answered;
    returns the time the last one finished. Arrivals during a step join at the next step, as in vLLM."""
    now = 0.0
    i = 0
    while i < len(requests) or engine.load:
        while i < len(requests) and requests[i].arrival <= now:
            engine.submit(requests[i])
            i += 1
        plan = engine.plan(now)
        if plan is None:
            if i >= len(requests):
                break
            now = max(now, requests[i].arrival)
            continue
        now += plan.duration_s
        engine.finish(plan, now)
    return now


def round_robin(requests: Sequence[SimRequest], replicas: int) -> list[list[SimRequest]]:
    """Requests in arrival order dealt to ``replicas`` engines in turn (a load balancer per request)."""
    if replicas < 1:
        raise ValueError("replicas must be at least 1")
    return [list(requests[k::replicas]) for k in range(replicas)]
