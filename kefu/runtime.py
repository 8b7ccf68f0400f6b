"""The composition root: builds every step of the pipeline once, from the settings and the pack."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from kefu.access.quota import LlmTokenQuota
from kefu.access.tokens import load_secret
from kefu.actions.bank_tools import bank_tools
from kefu.actions.demo_bank import DemoBank
from kefu.actions.demo_shop import DemoShop
from kefu.actions.http_shop import HttpShop
from kefu.actions.runner import ToolRunner
from kefu.actions.shop import ShopBackend
from kefu.actions.tools import SearchKnowledge, shop_tools
from kefu.channels.adapters import ChannelAdapters, build_channel_adapters
from kefu.channels.base import ConversationHub, Outbox
from kefu.channels.hub import InProcessHub
from kefu.channels.hub_redis import RedisHub
from kefu.channels.kafka.gateway import KafkaGateway
from kefu.config import Settings
from kefu.core.pipeline import Pipeline
from kefu.core.protocols import ConversationLocks
from kefu.core.types import Locale
from kefu.dialogue.engine import DialogueConfig, FlowEngine
from kefu.guard.pseudonym import Pseudonymizer
from kefu.guard.setup import build_guard, build_pseudonymizer, build_scrubber
from kefu.handoff.service import HandoffService
from kefu.handoff.setup import build_handoff
from kefu.knowledge.base import PASSAGE_TOKENS, KnowledgeBase, encode_cached, encoder_names
from kefu.knowledge.library import KnowledgeLibrary
from kefu.knowledge.pgvector import PgVectorStore
from kefu.knowledge.tokens import warm_up
from kefu.llm.gateway import LlmGateway
from kefu.llm.prompt import PromptBuilder
from kefu.llm.registry import ModelRegistry
from kefu.llm.tokens import QwenTokens
from kefu.llm.types import ModelVersion
from kefu.nlu.arbiter import LlmIntentArbiter
from kefu.nlu.dataset import OOS_LABEL
from kefu.nlu.encoder import MiniLmEncoder, RecentVectors, SentenceEncoder, UseEncoder, make_encoder
from kefu.nlu.entities import build_extractor
from kefu.nlu.model_store import ModelFormatError, load_model
from kefu.nlu.pack_models import load_or_train
from kefu.nlu.reload import ModelReloader, ModelSource, pointer_path
from kefu.nlu.service import NluService
from kefu.obs.metrics import Metrics
from kefu.obs.queue import watch_handoff_queue
from kefu.packs.loader import Pack, PackError, check_pack, load_pack
from kefu.respond.llm_writer import GroundedLlmWriter, WriterSafety
from kefu.respond.template_responder import TemplateResponder
from kefu.store.conversations import SqlConversationStore
from kefu.store.database import create_engine, migrate
from kefu.store.locks import InProcessLocks, RedisLocks
from kefu.store.privacy import purge_expired

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    pack: Pack
    encoder: SentenceEncoder
    nlu: NluService
    knowledge: KnowledgeBase
    engine: AsyncEngine
    store: SqlConversationStore
    tools: ToolRunner
    responder: TemplateResponder
    metrics: Metrics
    pipeline: Pipeline
    _closers: list[Callable[[], Any]] = field(default_factory=list)
    reloader: ModelReloader | None = None
    registry: ModelRegistry | None = None
    gateway: LlmGateway | None = None
    inflight: set[asyncio.Task[Any]] = field(default_factory=set)  # streamed turns whose client may be gone
    # HMAC pseudonyms of user ids and addresses, the same as in the logs (the privacy audit uses them).
    pseudonymize: Pseudonymizer | None = None
    # Live events to open widgets and agent consoles, and delivery of what is said outside a request.
    hub: ConversationHub = field(default_factory=InProcessHub)
    outbox: Outbox = field(init=False)
    # The signed webhook and WeChat adapters (their deliveries are registered on the outbox).
    channels: ChannelAdapters | None = None
    # Kafka routing (KEFU_KAFKA_BOOTSTRAP): publishes to kefu.inbound and relays kefu.outbound to the outbox.
    kafka: KafkaGateway | None = None
    # Handover to people: the queue, claims, agents' messages and notes, tickets, presence (kefu.handoff).
    handoff: HandoffService | None = None

    def __post_init__(self) -> None:
        self.outbox = Outbox(self.hub)

    async def close(self) -> None:
        if self.inflight:  # turns still running for clients that left: let them finish and be stored
            await asyncio.wait(set(self.inflight), timeout=self.settings.turn_deadline_s)
        await self.hub.close()
        for closer in reversed(self._closers):
            result = closer()
            if hasattr(result, "__await__"):
                await result
        await self.engine.dispose()


def build_understanding(pack: Pack, settings: Settings, encoder: SentenceEncoder) -> NluService:
    models = load_or_train(pack, encoder, settings.resolved_model_cache_dir, progress=lambda m: log.info(m))
    intents = models.intents
    if settings.intent_model is not None:
        try:
            intents = load_model(settings.intent_model, settings.nlu_threads)
        except ModelFormatError as exc:
            raise PackError(f"KEFU_INTENT_MODEL: {exc}") from exc
        unknown = sorted(set(intents.labels) - set(pack.intents) - {OOS_LABEL})
        if unknown:
            raise PackError(
                f"KEFU_INTENT_MODEL: {settings.intent_model} has labels pack {pack.name} does not know: "
                + ", ".join(unknown[:8])
            )
    extra = {name: make_encoder(name, settings.nlu_threads) for name in intents.encoders if name != encoder.name}
    return NluService(
        encoder,
        intents,
        models.acts,
        build_extractor(pack.entities, pack.product_names()),
        threshold=settings.intent_threshold,
        fallback_intent=pack.fallback_intent,
        default_locale=settings.default_locale,
        phrases=pack.quick_reply_meanings(),
        extra_encoders=extra,
    )


def build_reloader(pack: Pack, settings: Settings, nlu: NluService, metrics: Metrics) -> ModelReloader | None:
    if not settings.model_reload_s:
        return None
    source = (
        ModelSource(folder=settings.intent_model, threads=settings.nlu_threads)
        if settings.intent_model is not None
        else ModelSource(pointer=pointer_path(settings.resolved_model_cache_dir, pack.name))
    )
    return ModelReloader(
        nlu, source, set(pack.intents), interval_s=settings.model_reload_s, on_reload=metrics.model_reload
    )


def build_dialogue(pack: Pack) -> FlowEngine:
    fallback = next(f.name for f in pack.flows if pack.fallback_intent in f.triggers)
    config = DialogueConfig(
        handoff_intents=frozenset(pack.handoff_intents),
        closing_intents=frozenset(pack.closing_intents),
        negative_intents=frozenset(pack.negative_intents),
        fallback_flow=fallback,
    )
    return FlowEngine(pack.flows, config)


async def build_knowledge(
    pack: Pack, settings: Settings, encoder: SentenceEncoder, library: KnowledgeLibrary | None
) -> KnowledgeBase:
    """The pack's articles (encoded once and cached beside the models) plus the operator's library."""
    encoders: dict[str, SentenceEncoder] = {encoder.name: encoder}
    if settings.kb_minilm:
        encoders[MiniLmEncoder.name] = MiniLmEncoder(settings.nlu_threads, max_tokens=PASSAGE_TOKENS)
    pack_docs = await asyncio.to_thread(
        encode_cached,
        pack.documents,
        lambda language: {n: encoders[n] for n in encoder_names(language, settings.kb_minilm)},
        settings.resolved_model_cache_dir / "knowledge",
    )
    # KEFU_KB_INDEX=pgvector: the dense vectors are searched in PostgreSQL (kefu.knowledge.pgvector).
    dense = await PgVectorStore.open(settings.resolved_database_url) if settings.kb_index == "pgvector" else None
    knowledge = KnowledgeBase(pack_docs, library, encoders, settings.kb_minilm, pack.name, dense=dense)
    try:
        await knowledge.refresh(force=True)
    except BaseException:
        await knowledge.close()
        raise
    return knowledge


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel a background task and wait for it, so a query it was running hands its connection back."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def env_version_name(model: str) -> str:
    """The registry name of the server given by KEFU_LLM_BASE_URL / KEFU_LLM_MODEL."""
    return "env-" + re.sub(r"[^A-Za-z0-9._:-]+", "-", model).strip("-")[:90]


async def _register(registry: ModelRegistry, version: ModelVersion, actor: str) -> None:
    if await registry.get(version.name) != version:
        await registry.add(version, actor=actor, replace=True)


async def build_gateway(
    settings: Settings, registry: ModelRegistry, metrics: Metrics, qwen_tokens: QwenTokens | None = None
) -> LlmGateway:
    """Registers the models the settings name: the local engine (last in every chain) and an external
    server (made ``stable`` at start-up); with neither, the registry's own ``stable`` is used, if any."""
    local = None
    if settings.llm_local_url:
        local = ModelVersion(
            name="local",
            base_url=settings.llm_local_url,
            model=settings.llm_local_model,
            languages=tuple(settings.llm_local_languages),
            notes="the llama.cpp engine on this machine",
        )
        await _register(registry, local, "startup:KEFU_LLM_LOCAL_URL")
    routing = await registry.routing()
    if settings.llm_base_url:
        external = ModelVersion(
            name=env_version_name(settings.llm_model),
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            profile=settings.llm_profile or None,
            notes="from KEFU_LLM_BASE_URL",
        )
        await _register(registry, external, "startup:KEFU_LLM_BASE_URL")
        if routing.stable is None or routing.stable.name != external.name:
            await registry.promote(external.name, actor="startup:KEFU_LLM_BASE_URL")
    elif local is not None and routing.stable is None:
        await registry.promote(local.name, actor="startup:KEFU_LLM_LOCAL_URL")
    return LlmGateway(
        registry,
        local=local,
        call_timeout_s=settings.llm_call_timeout_s,
        api_keys=settings.llm_api_keys,
        default_api_key=settings.llm_api_key,
        observer=metrics,
        qwen_tokens=qwen_tokens,
    )


async def _warm_up(writer: GroundedLlmWriter, languages: tuple[Locale, ...]) -> None:
    for language in languages:
        await writer.warm_up(language)


async def purge_periodically(engine: AsyncEngine, days: int, every_s: float = 3600.0) -> None:
    """The retention period, applied by the server itself: conversations idle for longer are purged (and
    audited) at start-up and then every ``every_s``."""
    while True:
        try:
            erased = await purge_expired(engine, days, datetime.now(UTC))
        except Exception:  # a failed purge is retried next time; the server keeps answering
            log.exception("retention purge failed")
        else:
            if erased is not None:
                log.info("retention purge", extra={"days": days, "counts": erased.counts})
        await asyncio.sleep(every_s)


async def build_runtime(settings: Settings, *, kafka_relay: bool = True) -> Runtime:
    """``kafka_relay=False``: no Kafka gateway even when KEFU_KAFKA_BOOTSTRAP is set (``kefu worker``)."""
    pack = load_pack(settings.pack, settings.resolved_training_data_dir)
    encoder = RecentVectors(UseEncoder())  # the guard and the NLU embed each message once between them
    nlu = build_understanding(pack, settings, encoder)
    # Load the encoder's weights and jieba's dictionary now (seconds), not in the first customer's turn.
    encoder.encode(["你好 hello"])
    warm_up()
    closers: list[Callable[[], Any]] = []

    engine = create_engine(settings.resolved_database_url)
    await migrate(engine)
    secret = load_secret(settings.secret_key, settings.data_dir)
    guard = build_guard(settings, secret, encoder)
    closers.append(guard.moderator.close)
    store = SqlConversationStore(engine, build_scrubber(settings))
    knowledge = await build_knowledge(pack, settings, encoder, KnowledgeLibrary(engine))
    closers.append(knowledge.close)
    if settings.kb_reload_s:
        kb_watcher = asyncio.create_task(knowledge.watch(settings.kb_reload_s), name="kefu-kb-watcher")
        closers.append(partial(stop_task, kb_watcher))

    shop: ShopBackend
    if settings.tools_base_url:
        http_shop = HttpShop(
            settings.tools_base_url, api_key=settings.tools_api_key, timeout_s=settings.tools_timeout_s
        )
        closers.append(http_shop.close)
        shop = http_shop
    else:
        demo = DemoShop(engine)
        await demo.seed(pack.orders, pack.catalogue)
        shop = demo
    runner = ToolRunner(
        [
            *shop_tools(shop),
            *bank_tools(DemoBank(engine, pack.cards)),  # cards.yaml (empty: no cards)
            SearchKnowledge(knowledge, settings.knowledge_min_score, settings.knowledge_intent_min_score),
        ],
        timeout_s=settings.tools_timeout_s,
    )
    mutating = frozenset(name for name, tool in runner.tools.items() if getattr(tool, "mutates", False))
    problems = check_pack(pack, set(runner.tools), mutating)
    if problems:
        raise PackError("\n".join(problems))

    locks: ConversationLocks
    hub: ConversationHub = InProcessHub()
    if settings.redis_url:
        redis = Redis.from_url(settings.redis_url)
        closers.append(redis.aclose)
        locks = RedisLocks(redis, timeout_s=settings.lock_timeout_s)
        hub = RedisHub(redis)  # a widget on one replica sees what an agent on another says
    else:
        locks = InProcessLocks(settings.lock_timeout_s)

    responder = TemplateResponder(pack.templates, settings.default_locale)
    metrics = Metrics.for_pack(pack)
    arbiter = None
    if settings.intent_llm_fallback:
        arbiter = LlmIntentArbiter(
            settings.llm_base_url,
            settings.llm_model,
            api_key=settings.llm_api_key,
            below=settings.intent_llm_below,
            timeout_s=settings.llm_timeout_s,
            fallback_intent=pack.fallback_intent,
            profile=settings.llm_profile,
        )
        closers.append(arbiter.close)
    registry = ModelRegistry(engine)
    # Prompt budgets are counted in Qwen3 tokens, the production model (other tokenizers differ by a few
    # percent); loaded once here, and shared with the backends' accounting.
    qwen_tokens = QwenTokens(lazy=not settings.llm_answers)
    gateway = await build_gateway(settings, registry, metrics, qwen_tokens)
    closers.append(gateway.close)
    await gateway.refresh()
    if settings.llm_reload_s:
        registry_watcher = asyncio.create_task(gateway.watch(settings.llm_reload_s), name="kefu-llm-registry")
        closers.append(partial(stop_task, registry_watcher))
    writer = None
    if settings.llm_answers:
        writer = GroundedLlmWriter(
            gateway,
            PromptBuilder(pack.title, pack.persona, count_tokens=qwen_tokens, canary=guard.canary),
            responder,
            safety=WriterSafety(
                sentence_ok=guard.sentence_ok,
                suspicious=guard.document_suspicious,
                redact_pii=settings.llm_redact_pii,
                over_quota=LlmTokenQuota(engine, settings.llm_max_tokens_per_conversation).exhausted,
            ),
            actions=runner,
            tools=runner.tools,
            tool_allow=pack.llm_tools,
        )
        if gateway.local is not None:
            warm = asyncio.create_task(_warm_up(writer, pack.languages), name="kefu-llm-warm-up")
            closers.append(partial(stop_task, warm))
    pipeline = Pipeline(
        locks=locks,
        guard=guard,
        nlu=nlu,
        dialogue=build_dialogue(pack),
        actions=runner,
        responder=responder,
        store=store,
        observer=metrics,
        arbiter=arbiter,
        writer=writer,
        deadline_s=settings.turn_deadline_s,
    )
    queue_watcher = asyncio.create_task(watch_handoff_queue(engine, metrics), name="kefu-handoff-queue")
    closers.append(partial(stop_task, queue_watcher))
    if settings.retention_days:
        purger = asyncio.create_task(purge_periodically(engine, settings.retention_days), name="kefu-retention")
        closers.append(partial(stop_task, purger))
    reloader = build_reloader(pack, settings, nlu, metrics)
    if reloader is not None:
        watcher = asyncio.create_task(reloader.run(), name="kefu-model-reloader")
        closers.append(partial(stop_task, watcher))
    runtime = Runtime(
        settings,
        pack,
        encoder,
        nlu,
        knowledge,
        engine,
        store,
        runner,
        responder,
        metrics,
        pipeline,
        closers,
        reloader=reloader,
        registry=registry,
        gateway=gateway,
        pseudonymize=build_pseudonymizer(settings, secret),
        hub=hub,
    )
    runtime.handoff = build_handoff(
        settings=settings,
        pack=pack,
        store=store,
        hub=hub,
        outbox=runtime.outbox,
        pipeline=pipeline,
        texts=responder,
        metrics=metrics,
        tools=runner,
        gateway=gateway,
    )
    closers.append(runtime.handoff.close)
    runtime.channels = build_channel_adapters(settings, pipeline, runtime.outbox)
    closers.append(runtime.channels.close)  # runs first on close: WeChat turns still running finish
    if settings.kafka_bootstrap and kafka_relay:  # after the deliveries are registered: the relay uses them
        runtime.kafka = KafkaGateway.from_settings(settings, runtime.outbox)
        await runtime.kafka.start()
        closers.append(runtime.kafka.stop)
    return runtime
