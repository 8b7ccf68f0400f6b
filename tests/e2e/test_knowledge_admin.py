"""The knowledge base through the running server: upload, search, chat answers with citations, removal,
bad input, and a change made by `kefu kb add` picked up without a restart."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cli import kefu
from tests.conftest import MODEL_CACHE
from tests.e2e.admin import add_admin, admin_client
from tests.e2e.conftest import start_server, stop_server

SALON_EN = "# Pet grooming salon\n\nOur pet grooming salon opens at 9 am on Sundays and closes at 4 pm.\n"
SALON_ZH = (
    "<html><title>宠物美容店</title><body><h1>宠物美容店</h1>"
    "<p>宠物美容店周日上午九点开门，下午四点关门。</p></body></html>"
)


@pytest.fixture(scope="module")
def kb_admin(kb_server: tuple[str, Path]) -> Iterator[httpx.Client]:
    with admin_client(kb_server[0]) as client:
        yield client


@pytest.fixture(scope="module")
def kb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("kb-server")
    add_admin(data)
    process, base = start_server(data, KEFU_KB_RELOAD_S="0.5", KEFU_KB_MAX_FILE_MB="0.05")
    try:
        yield base, data
    finally:
        stop_server(process)


def _ask(base: str, text: str) -> dict[str, object]:
    response = httpx.post(f"{base}/v1/conversations/{uuid.uuid4().hex}/messages", json={"text": text}, timeout=30)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


def test_upload_search_chat_and_remove(kb_server: tuple[str, Path], kb_admin: httpx.Client) -> None:
    base, _ = kb_server
    upload = {
        "documents": [
            {"filename": "salon.md", "content": SALON_EN},
            {"filename": "salon.html", "content_base64": base64.b64encode(SALON_ZH.encode("gbk")).decode()},
            {"filename": "broken.pdf", "content_base64": base64.b64encode(b"%PDF-1.4 nonsense").decode()},
        ]
    }
    response = kb_admin.post("/admin/kb/documents", json=upload, timeout=120)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["added"], body["error"]) == (2, 1)
    refused = next(f for f in body["files"] if f["status"] == "error")
    assert refused["path"] == "broken.pdf" and refused["error"].startswith("broken.pdf: corrupt or unreadable PDF")
    assert "kefu-kb-" not in response.text  # the server's temporary folder never shows

    again = kb_admin.post("/admin/kb/documents", json={"documents": upload["documents"][:1]}, timeout=60)
    assert again.json()["unchanged"] == 1

    listed = kb_admin.get("/admin/kb/documents").json()["documents"]
    assert {(d["id"], d["language"], d["origin"]) for d in listed} >= {
        ("salon", "en", "library"), ("salon", "zh", "library"), ("warranty", "en", "pack")
    }  # fmt: skip

    found = kb_admin.get("/admin/kb/search", params={"q": "宠物美容周日几点开门"}).json()
    assert found["language"] == "zh" and found["hits"][0]["id"] == "salon" and found["hits"][0]["answers"]

    for text, words in (
        ("when does the pet grooming salon open on sundays?", "9 am"),
        ("宠物美容店周日几点开门？", "九点"),
    ):
        turn = _ask(base, text)
        reply = turn["reply"]
        assert {"id": "salon", "title": reply["citations"][0]["title"]} in reply["citations"], turn  # type: ignore[index]
        assert words in reply["text"], reply  # type: ignore[index]

    removed = kb_admin.delete("/admin/kb/documents/salon", params={"language": "en"})
    assert removed.status_code == 200 and [d["language"] for d in removed.json()["removed"]] == ["en"]
    assert kb_admin.delete("/admin/kb/documents/salon", params={"language": "en"}).status_code == 404
    after = kb_admin.get("/admin/kb/search", params={"q": "pet grooming salon sunday", "lang": "en"}).json()
    assert "salon" not in [h["id"] for h in after["hits"]]


def test_bad_input_is_refused_precisely(kb_admin: httpx.Client) -> None:
    url = "/admin/kb/documents"
    cases = [
        ({"documents": []}, 422, None),
        ({"documents": [{"filename": "../x.md", "content": "# x\n\ny"}]}, 422, "plain file name"),
        ({"documents": [{"filename": "x.docx", "content": "hello"}]}, 422, "must end in one of"),
        ({"documents": [{"filename": "x.md"}]}, 422, "exactly one of"),
        ({"documents": [{"filename": "x.pdf", "content_base64": "***"}]}, 422, "not valid base64"),
        (
            {"documents": [{"filename": "a.md", "content": "x"}, {"filename": "a.md", "content": "y"}]},
            422,
            "own filename",
        ),
        ({"documents": [{"filename": "empty.md", "content": "  "}]}, 422, "empty.md: empty document"),
        (
            {"documents": [{"filename": "warranty.md", "content": "# W\n\nmine", "language": "en"}]},
            422,
            "belongs to pack",
        ),
        ({"documents": [{"filename": "big.txt", "content": "word " * 20_000}]}, 422, "over the"),
    ]
    for payload, status, words in cases:
        response = kb_admin.post(url, json=payload, timeout=60)
        assert response.status_code == status, (payload, response.text)
        if words:
            assert words in response.text, response.text
    too_big = kb_admin.post(url, content=b"x" * 200_000, headers={"content-type": "application/json"})
    assert too_big.status_code == 413
    assert kb_admin.delete("/admin/kb/documents/warranty").status_code == 409
    assert kb_admin.get("/admin/kb/search", params={"q": " "}).status_code == 422
    assert kb_admin.get("/admin/kb/search", params={"q": "x", "k": 0}).status_code == 422


def test_a_command_line_change_reaches_the_running_server(
    kb_server: tuple[str, Path], kb_admin: httpx.Client, tmp_path: Path
) -> None:
    data = kb_server[1]
    doc = tmp_path / "locker.md"
    doc.write_text("# Parcel lockers\n\nParcels wait in the smart locker for 72 hours before they return to us.\n")
    env = {"KEFU_DATA_DIR": str(data), "KEFU_MODEL_CACHE_DIR": str(MODEL_CACHE)}
    done = kefu("kb", "add", str(doc), env=env)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        hits = kb_admin.get("/admin/kb/search", params={"q": "how long does a parcel wait in the locker"}).json()
        if hits["hits"] and hits["hits"][0]["id"] == "locker":
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"the server never saw the new document: {hits}")
