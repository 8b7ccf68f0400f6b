"""The model registry on SQLite and PostgreSQL: versions, aliases, rollbacks, experiments, accounting."""

from __future__ import annotations

import uuid

import pytest

from kefu.core.types import ConversationSnapshot, DialogueState, Event, IntentScore, Reply, TurnResult
from kefu.llm.registry import CallRecord, ModelExists, ModelRegistry, RegistryError, UnknownModel
from kefu.llm.types import ModelVersion
from kefu.store.conversations import SqlConversationStore
from tests.conftest import message


def version(name: str, **extra: object) -> ModelVersion:
    return ModelVersion(name=name, base_url="http://127.0.0.1:9/v1", model=f"model-{name}", **extra)  # type: ignore[arg-type]


async def test_add_list_and_versions_are_immutable(registry: ModelRegistry) -> None:
    await registry.add(version("v1", params={"temperature": 0.3}, languages=("en",), notes="first"), actor="t")
    with pytest.raises(ModelExists, match="immutable"):
        await registry.add(version("v1"), actor="t")
    [stored] = await registry.versions()
    assert stored == version("v1", params={"temperature": 0.3}, languages=("en",), notes="first")
    assert await registry.get("nope") is None


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (ModelVersion("stable", "http://h/v1", "m"), "alias name"),
        (ModelVersion("has space", "http://h/v1", "m"), "use 1-100 characters"),
        (ModelVersion("v", "ftp://h/v1", "m"), "must start with http"),
        (ModelVersion("v", "http://h/v1", " "), "must not be empty"),
        (ModelVersion("v", "http://h/v1", "m", params={"temprature": 1}), "unknown sampling parameters"),
        (ModelVersion("v", "http://h/v1", "m", languages=("fr",)), "zh and en"),
        (ModelVersion("v", "http://h/v1", "m", profile="llama9"), "generic, qwen3"),
    ],
)
async def test_bad_versions_are_refused_with_the_reason(
    registry: ModelRegistry, bad: ModelVersion, message: str
) -> None:
    before = await registry.revision()
    with pytest.raises(RegistryError, match=message):
        await registry.add(bad, actor="t")
    assert await registry.versions() == []
    assert await registry.revision() == before


async def test_promote_and_rollback_follow_the_alias_history(registry: ModelRegistry) -> None:
    for name in ("v1", "v2", "v3"):
        await registry.add(version(name), actor="t")
    assert await registry.promote("v1", actor="t") is None
    assert await registry.promote("v2", actor="t") == "v1"
    assert await registry.promote("v3", actor="t") == "v2"
    assert await registry.rollback(actor="ops") == ("v3", "v2")
    assert await registry.rollback(actor="ops") == ("v2", "v1")
    with pytest.raises(RegistryError, match="no earlier version"):
        await registry.rollback(actor="ops")
    routing = await registry.routing()
    assert routing.stable is not None and routing.stable.name == "v1"
    actions = [(a["action"], a["from"], a["to"]) for a in await registry.audit()]
    assert actions[:2] == [("rollback", "v2", "v1"), ("rollback", "v3", "v2")]
    assert all(a["actor"] for a in await registry.audit())


async def test_a_refused_change_changes_nothing(registry: ModelRegistry) -> None:
    await registry.add(version("v1"), actor="t")
    await registry.promote("v1", actor="t")
    revision = await registry.revision()
    with pytest.raises(UnknownModel, match="registered: v1"):
        await registry.promote("v9", actor="t")
    with pytest.raises(RegistryError, match="unknown alias"):
        await registry.promote("v1", alias="beta", actor="t")
    with pytest.raises(RegistryError, match="between 0 and 100"):
        await registry.start_experiment("v1", 120, actor="t")
    assert await registry.revision() == revision
    assert (await registry.aliases())["stable"]["name"] == "v1"
    assert "canary" not in await registry.aliases()


async def test_every_change_bumps_the_revision(registry: ModelRegistry) -> None:
    start = await registry.revision()
    await registry.add(version("v1"), actor="t")
    await registry.promote("v1", actor="t")
    assert await registry.revision() == start + 2


async def test_experiment_needs_a_stable_and_another_version(registry: ModelRegistry) -> None:
    await registry.add(version("v1"), actor="t")
    await registry.add(version("v2"), actor="t")
    with pytest.raises(RegistryError, match="no stable model"):
        await registry.start_experiment("v2", 10, actor="t")
    await registry.promote("v1", actor="t")
    with pytest.raises(RegistryError, match="already stable"):
        await registry.start_experiment("v1", 10, actor="t")
    await registry.start_experiment("v2", 25, actor="t")
    routing = await registry.routing()
    assert routing.canary is not None and routing.canary.name == "v2" and routing.canary_percent == 25
    assert await registry.stop_experiment(actor="t") == "v2"
    assert (await registry.routing()).canary is None
    with pytest.raises(RegistryError, match="no experiment"):
        await registry.stop_experiment(actor="t")


async def test_rolling_back_a_canary_without_history_ends_it(registry: ModelRegistry) -> None:
    for name in ("v1", "v2"):
        await registry.add(version(name), actor="t")
    await registry.promote("v1", actor="t")
    await registry.start_experiment("v2", 50, actor="t")
    assert await registry.rollback(alias="canary", actor="t") == ("v2", None)
    assert (await registry.routing()).canary is None


async def test_usage_sums_calls_per_version_and_variant(registry: ModelRegistry) -> None:
    def call(name: str, variant: str, outcome: str, ttft: float | None) -> CallRecord:
        return CallRecord("c", "m", name, "model", variant, outcome, 100, 20, ttft, 250.0)

    await registry.record([call("v1", "stable", "ok", 40.0), call("v1", "stable", "rejected", 60.0)])
    await registry.record([call("v2", "canary", "timeout", None)])
    usage = {(u["name"], u["variant"]): u for u in await registry.usage()}
    assert usage["v1", "stable"]["calls"] == 2
    assert usage["v1", "stable"]["answered"] == 1
    assert usage["v1", "stable"]["prompt_tokens"] == 200
    assert usage["v1", "stable"]["mean_ttft_ms"] == 50.0
    assert usage["v2", "canary"]["answered"] == 0 and usage["v2", "canary"]["mean_ttft_ms"] is None


async def test_usage_reads_out_the_ratings_of_conversations_each_variant_answered(registry: ModelRegistry) -> None:
    store = SqlConversationStore(registry.engine)
    for name, variant, rating in (("v1", "stable", 5), ("v1", "stable", 3), ("v2", "canary", 1)):
        conversation = f"ab-{uuid.uuid4().hex[:8]}"
        turn = message(conversation, "hi", "m1")
        events = [Event("message_received", {"text": "hi"}, "m1")]
        result = TurnResult(conversation, "m1", Reply("hello"), IntentScore("greeting", 0.9), (), "idle", False, "bot")
        await store.commit_turn(turn, ConversationSnapshot(conversation, "bot", DialogueState(), 0), events, result)
        await registry.record([CallRecord(conversation, "m1", name, "model", variant, "ok", 10, 5, 20.0, 90.0)])
        assert await store.add_feedback(conversation, rating, None)
    usage = {(u["name"], u["variant"]): u for u in await registry.usage()}
    assert (usage["v1", "stable"]["ratings"], usage["v1", "stable"]["mean_rating"]) == (2, 4.0)
    assert (usage["v2", "canary"]["ratings"], usage["v2", "canary"]["mean_rating"]) == (1, 1.0)
