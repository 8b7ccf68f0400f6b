"""Prometheus metrics on a registry owned by one app instance (no module-level state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kefu.llm.breaker import STATE_VALUES, State
from kefu.llm.registry import CallRecord

_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Implements the pipeline's ``TurnObserver``; label values are bounded (stages, channels, intents)."""

    def __init__(self, intents: tuple[str, ...] = ()) -> None:
        self.registry = CollectorRegistry()
        self._known_intents = frozenset(intents)
        self.turn_duration = Histogram(
            "kefu_turn_duration_seconds",
            "Time spent in each stage of a turn.",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=self.registry,
        )
        self.turns = Counter("kefu_turns_total", "Turns handled.", ["channel", "outcome"], registry=self.registry)
        self.intents = Counter("kefu_intents_total", "Recognised intents.", ["intent"], registry=self.registry)
        self.intent_confidence = Histogram(
            "kefu_intent_confidence",
            "Confidence of the recognised intent.",
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
            registry=self.registry,
        )
        self.http_errors = Counter(
            "kefu_http_errors_total",
            "Requests refused or failed, by error code.",
            ["code"],
            registry=self.registry,
        )
        self.feedback = Counter("kefu_csat_ratings_total", "Customer ratings.", ["rating"], registry=self.registry)
        self.model_reloads = Counter(
            "kefu_model_reloads_total", "Retrained intent models seen, by result.", ["result"], registry=self.registry
        )

        # The LLM gateway (model labels are registered version names: the operator bounds them).
        self.llm_calls = Counter(
            "kefu_llm_calls_total", "Model calls by outcome.", ["model", "variant", "outcome"], registry=self.registry
        )
        self.llm_tokens = Counter(
            "kefu_llm_tokens_total",
            "Prompt and completion tokens.",
            ["model", "variant", "kind"],
            registry=self.registry,
        )
        self.llm_ttft = Histogram(
            "kefu_llm_first_token_seconds",
            "Time from the request to the model's first token.",
            ["model", "variant"],
            buckets=_STAGE_BUCKETS,
            registry=self.registry,
        )
        self.llm_circuit = Gauge(
            "kefu_llm_circuit_state",
            "Circuit breaker per model version: 0 closed, 1 half-open, 2 open.",
            ["model"],
            registry=self.registry,
        )

    def llm_call(self, record: CallRecord) -> None:
        self.llm_calls.labels(record.name, record.variant, record.outcome).inc()
        self.llm_tokens.labels(record.name, record.variant, "prompt").inc(record.prompt_tokens)
        self.llm_tokens.labels(record.name, record.variant, "completion").inc(record.completion_tokens)
        if record.ttft_ms is not None:
            self.llm_ttft.labels(record.name, record.variant).observe(record.ttft_ms / 1000)

    def circuit(self, name: str, state: State) -> None:
        self.llm_circuit.labels(name).set(STATE_VALUES[state])

    def model_reload(self, ok: bool) -> None:
        self.model_reloads.labels("swapped" if ok else "refused").inc()

    def stage(self, name: str, seconds: float) -> None:
        self.turn_duration.labels(name).observe(seconds)

    def turn(self, channel: str, outcome: str, intent: str, confidence: float) -> None:
        self.turns.labels(channel, outcome).inc()
        self.intents.labels(intent if intent in self._known_intents else "other").inc()
        self.intent_confidence.observe(confidence)

    def render(self) -> bytes:
        return generate_latest(self.registry)
