"""Every limit and switch of the service, in one object read from `GRADSERVE_*` variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """The service's settings; each is read from ``GRADSERVE_<NAME>``, e.g. GRADSERVE_PORT."""

    model_config = SettingsConfigDict(env_prefix="GRADSERVE_", extra="forbid")

    host: str = Field(default="127.0.0.1", description="Address `gradserve serve` binds.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `gradserve serve` binds.")
    workers: int = Field(default=1, ge=1, description="Worker processes of `gradserve serve`.")
    max_body_bytes: int = Field(
        default=64 * 1024 * 1024, ge=0, description="Largest request body accepted (413 beyond)."
    )
    allow_reveal: bool = Field(
        default=False, description="Whether /v1/grade may answer reference values when asked."
    )


@lru_cache
def get_settings() -> Settings:
    """The settings of this process, read once from the environment."""
    return Settings()
