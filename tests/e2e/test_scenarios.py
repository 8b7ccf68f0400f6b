"""Scripted conversations in both languages against the real server (the shared examples and our own)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT

SHARED = ROOT.parent / "shared" / "examples" / "scenarios.jsonl"
OWN = Path(__file__).parent / "scenarios.jsonl"


def _load(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


SCENARIOS = _load(OWN) + [{**s, "id": f"shared-{s['id']}"} for s in _load(SHARED)]


def test_there_are_scenarios_in_both_languages() -> None:
    languages = [s["lang"] for s in _load(OWN)]
    assert languages.count("zh") >= 16 and languages.count("en") >= 16


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
def test_scenario(server: str, scenario: dict[str, Any]) -> None:
    cid = f"e2e-{scenario['id']}-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server, timeout=30) as client:
        for number, turn in enumerate(scenario["turns"], start=1):
            response = client.post(f"/v1/conversations/{cid}/messages", json={"text": turn["user"]})
            assert response.status_code == 200, response.text
            data = response.json()
            expect = turn.get("expect", {})
            where = f"turn {number} {turn['user']!r} -> {data['reply']['text']!r} ({data['intent']})"
            if "intent" in expect:
                assert data["intent"]["name"] == expect["intent"], where
            if "reply_contains_any" in expect:
                assert any(s in data["reply"]["text"] for s in expect["reply_contains_any"]), where
            if "handoff" in expect:
                assert data["handoff"] is expect["handoff"], where
            if "owner" in expect:
                assert data["owner"] == expect["owner"], where
            if "citations_any" in expect:
                cited = {c["id"] for c in data["reply"]["citations"]}
                assert cited & set(expect["citations_any"]), f"{where} cited {cited}"
            if data["owner"] == "agent":
                break
