"""One Settings object, read from the environment and `.env` files, built once in main() and passed down.

Priority: command-line flags, the environment, `./.env`, then `<data home>/.env`. Paths the user gives are
relative to the current folder as usual; the defaults live in the data home (index/home.py), never in it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.build import MIN_KEEP_VERSIONS, PAUSE_POINTS, BuildOptions
from index.dense import KINDS
from index.embedder import BACKENDS, DEFAULT_BACKEND, DEFAULT_MODEL, SentenceTransformerEmbedder, local_model_dir, resolve_model
from index.home import HOME_ENV, data_home, fingerprint_cache
from index.home import index_dir as home_index_dir
from index.home import models_dir as home_models_dir
from index.store import LocalStore, VersionStore
from index.watch import WatchError, parse_duration
from index.words import table_path
from retrieval.search import SearchConfig


MAX_INLINE_RESULTS = 50  # answerInlineQuery takes at most 50 results


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


def env_files(cwd: Path | None = None) -> tuple[Path, ...]:
    """The `.env` files to read, lowest priority first: the data home's, then the current folder's.

    NEWSQA_HOME may itself be set in `./.env`, so that file is consulted to find the data home.
    """
    local = (cwd or Path.cwd()) / ".env"
    environ: dict[str, str] = dict(os.environ)
    if HOME_ENV not in environ and local.is_file():
        from dotenv import dotenv_values

        value = dotenv_values(local).get(HOME_ENV)
        if value:
            environ[HOME_ENV] = value
    return (data_home(environ) / ".env", local.absolute())


class Settings(BaseSettings):
    """Every setting of newsqa; each field's alias is its environment variable (see .env.example)."""

    model_config = SettingsConfigDict(env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    # Named like its variable: with populate_by_name a field called `home` would also read $HOME.
    newsqa_home: Path = Field(default_factory=data_home, validation_alias=_env(HOME_ENV))
    corpus_dir: Path = Field(Path("corpus"), validation_alias=_env("NEWSQA_CORPUS_DIR"))
    # None until validated: then the data home's index/ and models/ unless set
    index_dir: Path | None = Field(None, validation_alias=_env("NEWSQA_INDEX_DIR"))
    models_dir: Path | None = Field(None, validation_alias=_env("NEWSQA_MODELS_DIR"))
    embedding_model: str = Field(DEFAULT_MODEL, validation_alias=_env("NEWSQA_EMBEDDING_MODEL"))
    embedding_backend: str = Field(DEFAULT_BACKEND, validation_alias=_env("NEWSQA_EMBEDDING_BACKEND"))
    device: str = Field("cpu", validation_alias=_env("NEWSQA_DEVICE"))
    threads: int = Field(0, validation_alias=_env("NEWSQA_THREADS"))
    # With the float ONNX backend, questions in Arabic are encoded by the int8 model (half the CPU, no loss on
    # Arabic questions; English ones keep the float model): index/embedder.py onnx_arabic_questions.
    arabic_questions_int8: bool = Field(True, validation_alias=_env("NEWSQA_ARABIC_QUESTIONS_INT8"))
    batch_size: int = Field(32, validation_alias=_env("NEWSQA_BATCH_SIZE"))

    chunk_max_chars: int = Field(600, validation_alias=_env("NEWSQA_CHUNK_MAX_CHARS"))
    chunk_min_chars: int = Field(150, validation_alias=_env("NEWSQA_CHUNK_MIN_CHARS"))
    faiss_index: str = Field("auto", validation_alias=_env("NEWSQA_FAISS_INDEX"))
    faiss_nprobe: int = Field(0, validation_alias=_env("NEWSQA_FAISS_NPROBE"))
    faiss_ef_search: int = Field(0, validation_alias=_env("NEWSQA_FAISS_EF_SEARCH"))
    faiss_exact_rerank: bool = Field(True, validation_alias=_env("NEWSQA_FAISS_EXACT_RERANK"))
    faiss_threads: int = Field(1, validation_alias=_env("NEWSQA_FAISS_THREADS"))  # per question, when serving
    sentence_vectors: bool = Field(True, validation_alias=_env("NEWSQA_SENTENCE_VECTORS"))
    late_chunking: bool = Field(False, validation_alias=_env("NEWSQA_LATE_CHUNKING"))
    # Keep the corpus's words with their vectors, and match a question in another script (English) by the
    # Arabic terms its words mean (index/lexicon.py, retrieval/translate.py)
    lexicon: bool = Field(True, validation_alias=_env("NEWSQA_LEXICON"))
    keep_versions: int = Field(3, validation_alias=_env("NEWSQA_KEEP_VERSIONS"))
    max_article_mb: float = Field(5.0, validation_alias=_env("NEWSQA_MAX_ARTICLE_MB"))
    # The Ray cluster `newsqa index build --ray` embeds on (else RAY_ADDRESS, else a local instance); e.g. ray://head:10001
    ray_address: str | None = Field(None, validation_alias=_env("NEWSQA_RAY_ADDRESS"))
    # Test-only: make builds stop at embedding|writing|switch so crash tests can kill them there.
    test_pause_at: str | None = Field(None, validation_alias=_env("NEWSQA_TEST_PAUSE_AT"))

    # Where the index lives: local files (FAISS + bm25s + SQLite in NEWSQA_INDEX_DIR) or a Qdrant deployment
    # (docs/scale-out.md). With qdrant and no URL, Qdrant's local mode runs in-process in NEWSQA_QDRANT_PATH.
    backend: str = Field("local", validation_alias=_env("NEWSQA_BACKEND"))
    qdrant_url: str | None = Field(None, validation_alias=_env("NEWSQA_QDRANT_URL"))
    qdrant_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("NEWSQA_QDRANT_API_KEY", "newsqa_qdrant_api_key", "QDRANT_API_KEY", "qdrant_api_key")
    )
    qdrant_path: Path | None = Field(None, validation_alias=_env("NEWSQA_QDRANT_PATH"))  # local mode (None: INDEX_DIR/qdrant)
    qdrant_prefix: str = Field("newsqa", validation_alias=_env("NEWSQA_QDRANT_PREFIX"))
    qdrant_shards: int = Field(1, ge=1, validation_alias=_env("NEWSQA_QDRANT_SHARDS"))
    qdrant_replicas: int = Field(1, ge=1, validation_alias=_env("NEWSQA_QDRANT_REPLICAS"))
    qdrant_write_consistency: int = Field(1, ge=1, validation_alias=_env("NEWSQA_QDRANT_WRITE_CONSISTENCY"))

    top_k: int = Field(5, validation_alias=_env("NEWSQA_TOP_K"))
    per_article: int = Field(2, validation_alias=_env("NEWSQA_PER_ARTICLE"))
    candidates: int = Field(100, validation_alias=_env("NEWSQA_CANDIDATES"))
    answer_threshold: float | None = Field(None, validation_alias=_env("NEWSQA_ANSWER_THRESHOLD"))
    terminal_bidi: str = Field("auto", validation_alias=_env("NEWSQA_TERMINAL_BIDI"))

    telegram_bot_token: SecretStr | None = Field(None, validation_alias=_env("TELEGRAM_BOT_TOKEN"))
    telegram_base_url: str | None = Field(None, validation_alias=_env("TELEGRAM_BASE_URL"))
    operator_ids: str = Field("", validation_alias=_env("OPERATOR_IDS"))
    telegram_mode: str = Field("polling", validation_alias=_env("TELEGRAM_MODE"))
    webhook_url: str | None = Field(None, validation_alias=_env("TELEGRAM_WEBHOOK_URL"))
    webhook_listen: str = Field("127.0.0.1", validation_alias=_env("TELEGRAM_WEBHOOK_LISTEN"))
    webhook_port: int = Field(8443, validation_alias=_env("TELEGRAM_WEBHOOK_PORT"))
    webhook_secret: SecretStr | None = Field(None, validation_alias=_env("TELEGRAM_WEBHOOK_SECRET"))
    user_questions_per_minute: int = Field(20, validation_alias=_env("NEWSQA_USER_QUESTIONS_PER_MINUTE"))
    telegram_messages_per_second: float = Field(30.0, validation_alias=_env("TELEGRAM_MESSAGES_PER_SECOND"))
    telegram_retries: int = Field(3, validation_alias=_env("TELEGRAM_RETRIES"))
    telegram_timeout: float = Field(10.0, validation_alias=_env("TELEGRAM_TIMEOUT"))
    # Open HTTP connections to the Bot API. httpx scans its whole pool on every request, so PTB's default of
    # 256 cost more CPU per answer than 16 (bench/bot_throughput.py); 30 messages/s need only a few.
    telegram_connections: int = Field(16, ge=1, validation_alias=_env("TELEGRAM_CONNECTIONS"))
    # The HTTP client for Bot API calls: aiohttp (~0.3 ms of CPU per call, bot/http.py) or python-telegram-bot's
    # own httpx (~1.3 ms).
    telegram_http: Literal["aiohttp", "httpx"] = Field("aiohttp", validation_alias=_env("TELEGRAM_HTTP"))
    bot_search_workers: int = Field(2, validation_alias=_env("NEWSQA_BOT_SEARCH_WORKERS"))
    # Questions in flight share one encoder call, up to this many (1 = each encoded on its own).
    bot_embed_batch: int = Field(16, ge=1, validation_alias=_env("NEWSQA_BOT_EMBED_BATCH"))
    # Vectors of questions already asked, by exact text, reused (0 = off; ~1.5 KB each). Needs the batch (> 1).
    bot_question_cache: int = Field(4096, ge=0, validation_alias=_env("NEWSQA_BOT_QUESTION_CACHE"))
    # "typing…" only for answers slower than this, seconds (0 = at once): a fast answer needs no indicator.
    bot_typing_after: float = Field(1.0, ge=0, validation_alias=_env("NEWSQA_BOT_TYPING_AFTER"))
    bot_state_file: Path | None = Field(None, validation_alias=_env("NEWSQA_BOT_STATE_FILE"))
    inline_results: int = Field(10, validation_alias=_env("NEWSQA_INLINE_RESULTS"))
    inline_cache_seconds: int = Field(30, validation_alias=_env("NEWSQA_INLINE_CACHE_SECONDS"))
    # Watch NEWSQA_CORPUS_DIR from the bot and update the index when it changes ("10m"; empty or "off": never)
    auto_update: str = Field("", validation_alias=_env("NEWSQA_AUTO_UPDATE"))
    followup_minutes: float = Field(10.0, validation_alias=_env("NEWSQA_FOLLOWUP_MINUTES"))

    _env_files: tuple[Path, ...] = PrivateAttr(())
    _store: Any = PrivateAttr(None)

    def __init__(self, **values: Any) -> None:
        """Read the environment and both `.env` files (see env_files); keyword values win over all."""
        given = values.pop("_env_file", ...)
        if given is ...:
            files = env_files()
        elif given is None:  # Settings(_env_file=None): the environment and keyword values only
            files = ()
        else:
            files = tuple(Path(f) for f in ((given,) if isinstance(given, (str, Path)) else given))
        super().__init__(_env_file=files or None, **values)
        self._env_files = tuple(f for f in files if f.is_file())

    @model_validator(mode="after")
    def _home_defaults(self) -> Settings:
        self.newsqa_home = self.newsqa_home.expanduser().absolute()
        if self.index_dir is None:
            self.index_dir = home_index_dir(self.home)
        if self.models_dir is None:
            self.models_dir = home_models_dir(self.home)
        self.index_dir, self.models_dir = self.index_dir.expanduser(), self.models_dir.expanduser()
        return self

    @property
    def home(self) -> Path:
        """The data home: NEWSQA_HOME, else the per-user data folder (index/home.py)."""
        return self.newsqa_home

    @property
    def env_files_read(self) -> tuple[Path, ...]:
        """The `.env` files that existed and were read, lowest priority first."""
        return self._env_files

    def locations(self) -> dict[str, Any]:
        """Where everything lives, as `newsqa index status` prints it."""
        model = resolve_model(self.embedding_model, self.models_dir)
        return {
            "data_home": str(self.home),
            "env_files": [str(f) for f in self.env_files_read],
            "index_dir": str(self.index_dir.absolute()),
            "models_dir": str(self.models_dir.absolute()),
            "model": str(Path(model).absolute()) if Path(model).is_dir() else f"{model} (not on disk)",
            "word_table": str(words.absolute()) if (words := table_path(local_model_dir(self.embedding_model, self.models_dir))).is_file() else None,
            "bot_state": str(self.bot_state_path.absolute()),
        }

    @field_validator("embedding_backend")
    @classmethod
    def _backend(cls, v: str) -> str:
        if v not in BACKENDS:
            raise ValueError(f"NEWSQA_EMBEDDING_BACKEND must be one of {', '.join(BACKENDS)}")
        return v

    @field_validator("faiss_index")
    @classmethod
    def _faiss_index(cls, v: str) -> str:
        if v not in ("auto", *KINDS):
            raise ValueError(f"NEWSQA_FAISS_INDEX must be auto or one of {', '.join(KINDS)}")
        return v

    @field_validator("test_pause_at")
    @classmethod
    def _pause(cls, v: str | None) -> str | None:
        if v and v not in PAUSE_POINTS:
            raise ValueError(f"NEWSQA_TEST_PAUSE_AT must be one of {', '.join(PAUSE_POINTS)}")
        return v or None

    @field_validator("keep_versions")
    @classmethod
    def _keep(cls, v: int) -> int:
        if v < MIN_KEEP_VERSIONS:
            raise ValueError(f"NEWSQA_KEEP_VERSIONS must be at least {MIN_KEEP_VERSIONS} (current and previous)")
        return v

    @field_validator("followup_minutes")
    @classmethod
    def _followup(cls, v: float) -> float:
        if not v > 0:
            raise ValueError("NEWSQA_FOLLOWUP_MINUTES must be a number of minutes above 0")
        return v

    @field_validator("operator_ids")
    @classmethod
    def _operators(cls, v: str) -> str:
        for part in v.replace(" ", "").split(","):
            if part and not part.lstrip("-").isdigit():
                raise ValueError(f"OPERATOR_IDS must be comma-separated numeric Telegram user ids, got {part!r}")
        return v

    @field_validator("backend")
    @classmethod
    def _backend_name(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in ("local", "qdrant"):
            raise ValueError(f"NEWSQA_BACKEND must be local or qdrant, got {v!r}")
        return v

    @field_validator("inline_results")
    @classmethod
    def _inline_results(cls, v: int) -> int:
        if not 1 <= v <= MAX_INLINE_RESULTS:
            raise ValueError(f"NEWSQA_INLINE_RESULTS must be 1 to {MAX_INLINE_RESULTS} (Telegram's limit), got {v}")
        return v

    @field_validator("inline_cache_seconds")
    @classmethod
    def _inline_cache(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"NEWSQA_INLINE_CACHE_SECONDS must be 0 or more, got {v}")
        return v

    @field_validator("auto_update")
    @classmethod
    def _auto_update(cls, v: str) -> str:
        v = v.strip()
        if v.lower() not in ("", "off", "0"):
            try:
                parse_duration(v)
            except WatchError as exc:
                raise ValueError(f"NEWSQA_AUTO_UPDATE: {exc}") from None
        return v

    @property
    def auto_update_seconds(self) -> float | None:
        """How often the bot looks at the corpus folder without a filesystem event; None when it does not watch."""
        return None if self.auto_update.lower() in ("", "off", "0") else parse_duration(self.auto_update)

    @property
    def operators(self) -> frozenset[int]:
        """Telegram user ids allowed to run operator commands."""
        return frozenset(int(p) for p in self.operator_ids.replace(" ", "").split(",") if p)

    @property
    def bot_state_path(self) -> Path:
        """SQLite file of the bot's button keys and chats' follow-up context (default: beside the index, so both survive restarts)."""
        return self.bot_state_file or self.index_dir / "bot-state.sqlite"

    def embedder(self, threads: int | None = None) -> SentenceTransformerEmbedder:
        """The configured embedder (the model loads on first use); `threads` overrides NEWSQA_THREADS."""
        return SentenceTransformerEmbedder(
            self.embedding_model, models_dir=self.models_dir, device=self.device, backend=self.embedding_backend,
            threads=self.threads if threads is None else threads, fingerprint_cache=fingerprint_cache(self.home),
            arabic_questions_int8=self.arabic_questions_int8,
        )

    def version_store(self) -> VersionStore:
        """Where the index versions live (one per Settings: Qdrant's local mode allows one client per folder)."""
        if self._store is None:
            if self.backend == "qdrant":
                from index.qdrant_store import QdrantStore, connect

                key = self.qdrant_api_key.get_secret_value() if self.qdrant_api_key else None
                path = str(self.qdrant_path or self.index_dir / "qdrant")
                client = connect(self.qdrant_url, None if self.qdrant_url else path, key)
                self._store = QdrantStore(client, self.qdrant_prefix, self.qdrant_shards, self.qdrant_replicas,
                                          self.qdrant_write_consistency)
            else:
                self._store = LocalStore(self.index_dir)
        return self._store

    def build_options(self, full: bool = False) -> BuildOptions:
        """Options of an index build."""
        return BuildOptions(
            max_chars=self.chunk_max_chars,
            min_chars=self.chunk_min_chars,
            faiss_kind=self.faiss_index,
            keep_versions=self.keep_versions,
            batch_size=self.batch_size,
            max_article_bytes=int(self.max_article_mb * 1024 * 1024),
            full=full,
            pause_at=self.test_pause_at,
            sentence_vectors=self.sentence_vectors,
            late_chunking=self.late_chunking,
            lexicon=self.lexicon,
            ray_address=self.ray_address or None,
        )

    def search_config(self) -> SearchConfig:
        """Ranking and no-answer settings."""
        return SearchConfig(
            candidates=self.candidates,
            per_article=self.per_article,
            threshold=self.answer_threshold,
            nprobe=self.faiss_nprobe,
            ef_search=self.faiss_ef_search,
            exact_rerank=self.faiss_exact_rerank,
            translate=self.lexicon,
        )
