"""Settings: the only reader of the environment, validated once at start and passed in."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRET = "change-me-this-is-not-a-secret"


class Environment(StrEnum):
    development = "development"
    demo = "demo"
    test = "test"
    production = "production"


class SettingsError(Exception):
    """A setting is missing or wrong; the message is one line a person can act on."""


def async_database_url(url: str) -> str:
    """Accept the URLs people write and pick the async driver Rapport uses for each."""
    url = url.strip()
    if url.startswith("sqlite:///") or url == "sqlite://":
        return "sqlite+aiosqlite" + url[len("sqlite") :]
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        return url
    raise ValueError(
        "must start with sqlite:/// or postgresql:// "
        f"(got {url.split('://', 1)[0] or 'nothing'}://...)"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAPPORT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Environment = Environment.development
    database_url: str = "sqlite:///var/rapport.db"
    redis_url: str | None = None
    # Namespace of Rapport's Redis channels and keys, so deployments can share one Redis.
    redis_prefix: str = "rapport"
    secret_key: SecretStr = SecretStr(PLACEHOLDER_SECRET)
    public_url: str = "http://localhost:8000"

    # Web
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    session_max_age_seconds: int = 14 * 24 * 3600
    login_rate_limit: str = "10/5minutes"
    default_locale: str = "en"
    # The public website widget: per browser address, per visitor session, and identify attempts.
    widget_rate_limit: str = "240/minute"
    widget_message_rate_limit: str = "30/minute"
    widget_identify_rate_limit: str = "10/5minutes"
    widget_max_upload_bytes: int = 10 * 1024 * 1024

    # Where front-end packages from the npm registry are installed (htmx); default: the
    # checkout's node_modules, filled by `make install`.
    vendor_dir: Path | None = None

    # Storage
    storage_dir: Path = Path("var/files")
    max_attachment_bytes: int = 20 * 1024 * 1024

    # Workers
    worker_concurrency: int = 8
    outbox_lease_seconds: int = 60
    outbox_max_attempts: int = 12

    # Outbound HTTP (webhooks, provider APIs, media): private and loopback targets are refused
    # unless explicitly allowed, e.g. for tests that run fake providers on 127.0.0.1.
    http_allow_private: bool = False
    http_timeout_seconds: float = 15.0

    # Outbound webhooks: attempts per delivery, exponential backoff (base * 2^(n-1), capped),
    # the receiver's time to answer, and how long the delivery log keeps finished deliveries.
    webhook_max_attempts: int = Field(default=10, ge=1, le=50)
    webhook_retry_base_seconds: float = Field(default=30.0, ge=0)
    webhook_retry_max_seconds: float = Field(default=6 * 3600.0, ge=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=30)
    webhook_log_retention_days: int = Field(default=30, ge=1)

    # SMTP for outgoing mail (email channel, notifications).
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_from: str = "Rapport <no-reply@localhost>"

    # The built-in SMTP listener for incoming mail (email inboxes): off unless a port is set.
    # Run by `rapport worker` (and in-process by `demo` / `serve --with-worker`); several
    # workers on one machine share the port.
    smtp_listen_host: str = "127.0.0.1"
    smtp_listen_port: int | None = None
    smtp_listen_max_bytes: int = 30 * 1024 * 1024

    # Listeners (SMTP listener, IMAP pollers): how often inbox settings are read again, and how
    # long one worker holds a polled mailbox before another may take it over.
    intake_refresh_seconds: float = 30.0
    intake_lease_seconds: int = 120

    # Observability
    log_level: str = "INFO"
    log_format: str = "console"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return async_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis:// or rediss://")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _real_secret_outside_development(self) -> Settings:
        placeholder = self.secret_key.get_secret_value() in ("", PLACEHOLDER_SECRET)
        if placeholder and self.env == Environment.production:
            raise ValueError(
                "RAPPORT_SECRET_KEY must be set to a long random value in production "
                "(try: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if self.env == Environment.production and len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("RAPPORT_SECRET_KEY must be at least 32 characters in production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def sync_database_url(self) -> str:
        """The same database through a synchronous driver URL (Alembic offline/SQL rendering)."""
        return self.database_url


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings, turning validation errors into one clear line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        env_name = f"RAPPORT_{field.upper()}" if first["loc"] else "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"{env_name}: {message}") from None
