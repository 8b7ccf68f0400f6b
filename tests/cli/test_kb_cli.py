"""`kefu kb`: add, list, search, remove and eval through the real command, on a throwaway database."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import kefu
from tests.conftest import MODEL_CACHE

SALON_EN = "# Grooming salon\n\nOur pet grooming salon opens at 9 am on Sundays and closes at 4 pm.\n"
SALON_ZH = "宠物美容店营业时间\n\n我们的宠物美容店周日上午九点开门，下午四点关门。\n"


def _env(tmp_path: Path) -> dict[str, str]:
    return {"KEFU_DATA_DIR": str(tmp_path / "data"), "KEFU_MODEL_CACHE_DIR": str(MODEL_CACHE)}


def _last_json(stdout: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(stdout.strip().splitlines()[-1])
    return result


def test_add_list_search_remove(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "salon.md").write_text(SALON_EN)
    (docs / "salon.txt").write_text(SALON_ZH)
    (docs / "broken.pdf").write_bytes(b"not a pdf")
    env = _env(tmp_path)

    added = kefu("kb", "add", str(docs), "--json", env=env)
    assert added.returncode == 1, added.stderr  # one file refused, the others in
    result = _last_json(added.stdout)
    assert (result["added"], result["error"]) == (2, 1)
    files = {Path(str(f["path"])).name: f for f in result["files"]}  # type: ignore[attr-defined, index]
    assert "corrupt or unreadable PDF" in str(files["broken.pdf"]["error"])
    assert (files["salon.md"]["language"], files["salon.txt"]["language"]) == ("en", "zh")
    assert "broken.pdf" in added.stderr and "2 added" in added.stderr

    again = kefu("kb", "add", str(docs / "salon.md"), str(docs / "salon.txt"), "--json", env=env)
    assert again.returncode == 0 and _last_json(again.stdout)["unchanged"] == 2

    listed = _last_json(kefu("kb", "list", "--json", env=env).stdout)["documents"]
    rows = {(d["id"], d["language"]): d for d in listed}  # type: ignore[attr-defined, index]
    assert rows[("salon", "en")]["origin"] == "library" and rows[("salon", "zh")]["version"] == 1
    assert rows[("returns-policy", "en")]["origin"] == "pack"

    for query, lang in (("when does the grooming salon open on sunday", "en"), ("宠物美容周日几点开门", "zh")):
        found = kefu("kb", "search", query, "--json", env=env)
        assert found.returncode == 0, found.stderr
        hits = _last_json(found.stdout)
        assert hits["language"] == lang and hits["hits"][0]["id"] == "salon", hits  # type: ignore[index]

    refused = kefu("kb", "remove", "returns-policy", env=env)
    assert refused.returncode == 1 and "belongs to pack ecommerce" in refused.stderr
    removed = kefu("kb", "remove", "salon", "--lang", "zh", "--json", env=env)
    assert [d["language"] for d in _last_json(removed.stdout)["removed"]] == ["zh"]  # type: ignore[attr-defined, index]
    gone = kefu("kb", "remove", "salon", "--lang", "zh", env=env)
    assert gone.returncode == 1 and "no document 'salon' in zh" in gone.stderr
    assert kefu("kb", "search", "x", "--lang", "fr", env=env).returncode == 2


def test_eval_scores_questions_against_a_folder(tmp_path: Path) -> None:
    docs = tmp_path / "articles"
    docs.mkdir()
    (docs / "salon.md").write_text(SALON_EN)
    (docs / "parking.md").write_text("# Parking\n\nCustomers park free for two hours in the basement garage.\n")
    (docs / "gift-cards.md").write_text("# Gift cards\n\nGift cards never expire and can be topped up online.\n")
    questions = tmp_path / "questions.jsonl"
    rows = [
        {"question": "is parking free for customers?", "article_ids": ["parking"]},
        {"question": "do gift cards expire", "article_ids": ["gift-cards"]},
        {"question": "what time do you open on sunday for dog grooming", "article_ids": ["salon", "parking"]},
    ]
    questions.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    done = kefu("kb", "eval", "--docs", str(docs), "--data", str(questions), "--json", env=_env(tmp_path))
    assert done.returncode == 0, done.stderr
    result = _last_json(done.stdout)
    assert (result["documents"], result["questions"], result["hit@1"], result["hit@5"], result["mrr@10"]) == (
        3, 3, 1.0, 1.0, 1.0
    )  # fmt: skip
    assert "abstention_rate" in result

    questions.write_text('{"question": "x", "article_ids": ["parking"]}\nnot json\n')
    bad = kefu("kb", "eval", "--docs", str(docs), "--data", str(questions), env=_env(tmp_path))
    assert bad.returncode == 2 and f"{questions}:2: bad JSON" in bad.stderr
    questions.write_text('{"question": "where to park", "article_ids": ["garage"]}\n')
    unknown = kefu("kb", "eval", "--docs", str(docs), "--data", str(questions), env=_env(tmp_path))
    assert unknown.returncode == 2 and "not in the index: garage" in unknown.stderr
