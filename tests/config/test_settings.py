from __future__ import annotations

from pathlib import Path

import pytest

from kefu.config import SettingsError, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEFU_CONFIG", "KEFU_DATABASE_URL", "KEFU_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.port == 8000 and settings.pack == "ecommerce"
    assert settings.resolved_database_url.startswith("sqlite+aiosqlite:///")


def test_environment_and_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_PORT", "9001")
    monkeypatch.setenv("KEFU_API_KEYS", "a, b ,c")
    monkeypatch.setenv("KEFU_CORS_ORIGINS", '["https://shop.example"]')
    settings = load_settings()
    assert settings.port == 9001 and settings.api_keys == ["a", "b", "c"]
    assert settings.cors_origins == ["https://shop.example"]


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("KEFU_PORT", "eighty", "KEFU_PORT"),
        ("KEFU_PORT", "70000", "KEFU_PORT"),
        (
            "KEFU_DATABASE_URL",
            "mysql://x",
            "KEFU_DATABASE_URL: Value error, must start with sqlite+aiosqlite://",
        ),
        ("KEFU_REDIS_URL", "localhost:6379", "KEFU_REDIS_URL"),
        ("KEFU_INTENT_THRESHOLD", "1.5", "KEFU_INTENT_THRESHOLD"),
        ("KEFU_LOG_LEVEL", "loud", "KEFU_LOG_LEVEL"),
    ],
)
def test_bad_values_name_the_key(monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert fragment in str(error.value)


def test_yaml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "kefu.yaml"
    config.write_text("port: 8123\nmax_text_chars: 100\n")
    monkeypatch.setenv("KEFU_CONFIG", str(config))
    monkeypatch.setenv("KEFU_MAX_TEXT_CHARS", "200")  # the environment wins over the file
    settings = load_settings()
    assert settings.port == 8123 and settings.max_text_chars == 200


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("colour: blue\n", "unknown setting(s) colour"),
        ("port: [\n", "not valid YAML"),
        ("- a\n", "must hold a mapping"),
    ],
)
def test_bad_yaml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str, fragment: str) -> None:
    config = tmp_path / "kefu.yaml"
    config.write_text(content)
    monkeypatch.setenv("KEFU_CONFIG", str(config))
    with pytest.raises(SettingsError, match="KEFU_CONFIG") as error:
        load_settings()
    assert fragment in str(error.value)


def test_missing_yaml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KEFU_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(SettingsError, match="file not found"):
        load_settings()
