"""Settings from ``LOUDOU_*`` environment variables (twelve-factor)."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOUDOU_", extra="ignore")

    database_url: str = "sqlite:///./loudou.db"
    # Signs session cookies; set it in production. The default only suits a laptop.
    secret_key: str = "change-me-in-production"
    host: str = "127.0.0.1"
    port: int = 8000
    default_locale: str = "zh-CN"
    default_timezone: str = "Asia/Shanghai"
    # SQLite waits this long for a competing writer before giving up (milliseconds).
    sqlite_busy_timeout_ms: int = 10_000
    sql_echo: bool = False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
