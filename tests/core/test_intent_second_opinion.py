"""The pipeline with the LLM second opinion switched on and the LLM unreachable: unsure messages are still
answered with the classifier's intent, sure ones never wait for the LLM, and nothing is lost."""

from __future__ import annotations

import uuid
from pathlib import Path

from kefu.runtime import build_runtime
from tests.conftest import make_settings, message
from tests.e2e.conftest import free_port


async def test_a_dead_llm_never_blocks_or_changes_a_turn(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        intent_llm_fallback=True,
        intent_llm_below=0.99,
        llm_base_url=f"http://127.0.0.1:{free_port()}/v1",
        llm_model="absent",
        llm_timeout_s=1.0,
        model_reload_s=0,
    )
    runtime = await build_runtime(settings)
    try:
        assert runtime.pipeline.arbiter is not None
        cid = f"c-{uuid.uuid4().hex}"
        unsure = await runtime.pipeline.handle(message(cid, "hmm the thing from before, what about it", "m1"))
        sure = await runtime.pipeline.handle(message(cid, "我的订单100001到哪了", "m2"))
        assert unsure.reply.text and sure.intent.name == "order_status"
        kinds = [kind for _seq, kind, _mid, _payload in await runtime.store.events(cid)]
        assert kinds.count("reply_sent") == 2 and "intent_arbitrated" not in kinds
    finally:
        await runtime.close()
