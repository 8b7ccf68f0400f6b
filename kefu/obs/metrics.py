"""Prometheus metrics on a registry owned by one app instance (no module-level state).

Every label is bounded (see ``kefu.obs.labels``): stages, channels, outcomes, intents of the pack, handover
reasons of the code and the pack, model versions the operator registered, HTTP route templates. No label
holds an id, a user's text or a raw path.

Several API replicas each export the same gauges of shared state (the handover queue): aggregate those
with ``max``, and the per-process counters with ``sum``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kefu import __version__
from kefu.core.types import Event
from kefu.llm.breaker import STATE_VALUES, State
from kefu.llm.registry import CallRecord
from kefu.obs import labels
from kefu.packs.loader import Pack

# 1.5 s is the turn-latency objective: a bucket edge there makes the p90 alert exact.
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
WAIT_BUCKETS = (5.0, 10.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
# Templates by which a flow says "I don't know" to a knowledge question (every pack has it).
ABSTAIN_TEMPLATES = frozenset({"kb_no_answer"})
KNOWLEDGE_TOOL = "search_knowledge"

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Implements the pipeline's ``TurnObserver``, the LLM gateway's observer and the HTTP middleware's."""

    def __init__(
        self,
        intents: Sequence[str] = (),
        *,
        fallback_intent: str = "out_of_scope",
        handoff_reasons: frozenset[str] = frozenset(),
        version: str = __version__,
    ) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # CPU, memory, open files of this process
        self._known_intents = frozenset(intents)
        self._fallback_intent = fallback_intent
        self._pack_reasons = frozenset(sorted(handoff_reasons)[: labels.MAX_PACK_HANDOFF_REASONS])
        r = self.registry
        Gauge("kefu_build_info", "The running kefu version (always 1).", ["version"], registry=r).labels(version).set(1)

        # Turns (kefu.core.pipeline).
        self.turn_duration = Histogram(
            "kefu_turn_duration_seconds",
            "Time spent in each stage of a turn.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        # A turn times ~10 stages: their series are looked up once here, not on every observation.
        self._stage_children = {s: self.turn_duration.labels(s) for s in (*labels.STAGES, labels.OTHER)}
        self.turns = Counter("kefu_turns_total", "Turns handled, by outcome.", ["channel", "outcome"], registry=r)
        self.turn_errors = Counter(
            "kefu_turn_errors_total",
            "Turns that failed inside kefu (handed over to a person).",
            ["channel"],
            registry=r,
        )
        self.intents = Counter("kefu_intents_total", "Recognised intents.", ["intent"], registry=r)
        self.intent_confidence = Histogram(
            "kefu_intent_confidence",
            "Confidence of the recognised intent.",
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
            registry=r,
        )
        self.fallbacks = Counter(
            "kefu_fallbacks_total",
            "Turns whose intent is the pack's fallback (out of scope).",
            ["channel"],
            registry=r,
        )
        self.handoffs = Counter("kefu_handoffs_total", "Conversations handed to a person.", ["reason"], registry=r)
        self.abstentions = Counter(
            "kefu_abstentions_total", "Knowledge questions answered with 'I don't know'.", ["source"], registry=r
        )
        self.guard_actions = Counter(
            "kefu_guard_actions_total",
            "Safety-policy actions on messages (in) and replies (out).",
            ["direction", "action"],
            registry=r,
        )
        self.pii_detected = Counter("kefu_pii_detected_total", "PII spans found, by type.", ["type"], registry=r)
        self.injection_flagged = Counter(
            "kefu_injection_flagged_total", "Customer messages flagged as prompt injection.", registry=r
        )
        self.feedback = Counter(
            "kefu_csat_ratings_total",
            "Customer ratings (1..5), by the model variant the customer is on.",
            ["rating", "variant"],
            registry=r,
        )
        self.csat_score = Histogram(
            "kefu_csat_score",
            "Customer ratings (1..5) as values: _sum / _count is the mean.",
            ["variant"],
            buckets=(1.0, 2.0, 3.0, 4.0, 5.0),
            registry=r,
        )
        self.model_reloads = Counter(
            "kefu_model_reloads_total", "Retrained intent models seen, by result.", ["result"], registry=r
        )

        # Handover to people (the queue is read from the store; the wait is observed by the agent console).
        self.handoff_queue = Gauge(
            "kefu_handoff_queue_length",
            "Conversations handed over and waiting for an agent to claim them (the same in every replica).",
            registry=r,
        )
        self.handoff_wait = Histogram(
            "kefu_handoff_wait_seconds",
            "Time from a handover to an agent taking the conversation.",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.kafka_lag = Gauge(
            "kefu_kafka_consumer_lag",
            "Messages behind the partition's end, per assigned partition.",
            ["topic", "partition"],
            registry=r,
        )

        # The LLM gateway (model labels are registered version names: the operator bounds them).
        self.llm_calls = Counter(
            "kefu_llm_calls_total", "Model calls by outcome.", ["model", "variant", "outcome"], registry=r
        )
        self.llm_tokens = Counter(
            "kefu_llm_tokens_total", "Prompt and completion tokens.", ["model", "variant", "kind"], registry=r
        )
        self.llm_ttft = Histogram(
            "kefu_llm_first_token_seconds",
            "Time from the request to the model's first token.",
            ["model", "variant"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.llm_circuit = Gauge(
            "kefu_llm_circuit_state",
            "Circuit breaker per model version: 0 closed, 1 half-open, 2 open.",
            ["model"],
            registry=r,
        )

        # HTTP (kefu.obs.http): route templates, never raw paths.
        self.http_requests = Counter(
            "kefu_http_requests_total", "HTTP requests answered.", ["route", "method", "status"], registry=r
        )
        self.http_duration = Histogram(
            "kefu_http_request_duration_seconds",
            "Time to answer an HTTP request (a stream: to its end).",
            ["route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.http_inflight = Gauge(
            "kefu_inflight_requests", "HTTP requests being answered now (the autoscaler's signal).", registry=r
        )
        self.http_errors = Counter(
            "kefu_http_errors_total", "Requests refused or failed, by error code.", ["code"], registry=r
        )

    @classmethod
    def for_pack(cls, pack: Pack) -> Metrics:
        """Metrics whose intent and handover-reason labels are the pack's own."""
        reasons = frozenset(str(s.arg) for f in pack.flows for s in f.steps if s.kind == "handoff")
        return cls(pack.intents, fallback_intent=pack.fallback_intent, handoff_reasons=reasons)

    # --- the pipeline (TurnObserver) ---

    def stage(self, name: str, seconds: float) -> None:
        child = self._stage_children.get(name) or self._stage_children[labels.OTHER]
        child.observe(seconds)

    def turn(self, channel: str, outcome: str, intent: str, confidence: float) -> None:
        channel = labels.bounded(channel, labels.CHANNELS)
        self.turns.labels(channel, labels.bounded(outcome, labels.TURN_OUTCOMES)).inc()
        self.intents.labels(labels.bounded(intent, self._known_intents)).inc()
        self.intent_confidence.observe(confidence)
        if intent == self._fallback_intent and outcome != "replayed":
            self.fallbacks.labels(channel).inc()

    def recorded(self, channel: str, events: Sequence[Event]) -> None:
        """What a committed turn recorded: guard verdicts, handovers, abstentions, failures, retrievals.
        Only label-sized facts are read from the payloads (never a text)."""
        for event in events:
            payload = event.payload
            if event.type in ("guard_inbound", "guard_outbound"):
                self._guard(payload, "in" if event.type == "guard_inbound" else "out")
            elif event.type == "owner_changed" and payload.get("to") == "agent":
                self.handoffs.labels(labels.handoff_reason(payload.get("reason"), self._pack_reasons)).inc()
            elif event.type == "dialogue_step" and ABSTAIN_TEMPLATES.intersection(payload.get("utterances") or ()):
                self.abstentions.labels("flow").inc()
            elif event.type == "llm_reply" and payload.get("outcome") == "no_answer":
                self.abstentions.labels("llm").inc()
            elif event.type == "turn_failed":
                self.turn_errors.labels(labels.bounded(channel, labels.CHANNELS)).inc()
            elif event.type == "tool_called" and payload.get("tool") == KNOWLEDGE_TOOL:
                ms = payload.get("ms")
                if isinstance(ms, int | float):
                    self._stage_children["retrieval"].observe(ms / 1000)

    def _guard(self, payload: Mapping[str, Any], direction: str) -> None:
        self.guard_actions.labels(direction, labels.bounded(str(payload.get("action")), labels.GUARD_ACTIONS)).inc()
        for pii_type in payload.get("pii") or ():
            self.pii_detected.labels(labels.bounded(str(pii_type), labels.PII_TYPES)).inc()
        if payload.get("injection"):
            self.injection_flagged.inc()

    # --- the LLM gateway (GatewayObserver) ---

    def llm_call(self, record: CallRecord) -> None:
        variant = labels.bounded(record.variant, labels.VARIANTS)
        self.llm_calls.labels(record.name, variant, record.outcome).inc()
        self.llm_tokens.labels(record.name, variant, "prompt").inc(record.prompt_tokens)
        self.llm_tokens.labels(record.name, variant, "completion").inc(record.completion_tokens)
        if record.ttft_ms is not None:
            self.llm_ttft.labels(record.name, variant).observe(record.ttft_ms / 1000)
            # The reply writer is the gateway's only caller on a turn: its first token is the turn's.
            self._stage_children["llm_first_token"].observe(record.ttft_ms / 1000)

    def circuit(self, name: str, state: State) -> None:
        self.llm_circuit.labels(name).set(STATE_VALUES[state])

    # --- the HTTP middleware (kefu.obs.http) ---

    def http_started(self) -> None:
        self.http_inflight.inc()

    def http_finished(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_inflight.dec()
        self.http_requests.labels(route, labels.bounded(method, labels.HTTP_METHODS), str(status)).inc()
        self.http_duration.labels(route).observe(seconds)

    # --- everything else ---

    def csat(self, rating: int, variant: str | None) -> None:
        """A customer's rating; ``variant`` is the A/B arm (stable, canary, local) the customer is on."""
        arm = labels.bounded(variant or "none", labels.VARIANTS)
        self.feedback.labels(str(rating), arm).inc()
        self.csat_score.labels(arm).observe(rating)

    def model_reload(self, ok: bool) -> None:
        self.model_reloads.labels("swapped" if ok else "refused").inc()

    def set_handoff_queue(self, length: int) -> None:
        self.handoff_queue.set(length)

    def observe_handoff_wait(self, seconds: float) -> None:
        """Call when an agent takes over a handed-over conversation, with the seconds since the handover
        (the ``owner_changed`` event to ``agent``). The agent console (issue 6) is the caller."""
        self.handoff_wait.observe(max(0.0, seconds))

    def set_kafka_lag(self, topic: str, partition: int, lag: int) -> None:
        """A consumer's lag on one assigned partition (end offset - committed offset). Topics come from
        the settings, so they bound the label; call ``forget_kafka_partition`` when a partition is revoked."""
        self.kafka_lag.labels(topic, str(partition)).set(max(0, lag))

    def forget_kafka_partition(self, topic: str, partition: int) -> None:
        try:
            self.kafka_lag.remove(topic, str(partition))
        except KeyError:  # never reported by this process: nothing to forget
            return

    def render(self) -> bytes:
        return generate_latest(self.registry)
