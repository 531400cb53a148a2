"""boto3 clients for the legacy sources (RDS, KMS, Route 53, Secrets Manager, EKS).

Credentials come from a prefect-aws ``AwsCredentials`` block when one is named
(``BUA_AWS_CREDENTIALS_BLOCK``), else from the SDK's default chain (the ECS task role in
production, ``AWS_*`` variables in tests). ``BUA_AWS_ENDPOINT_URL`` points every client at one
endpoint (moto's server in tests). A secret read here is returned to the caller only; it is never
logged and never put in an error message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tasks.settings import Settings


@dataclass(frozen=True)
class AwsConfig:
    """Where the clients go: region, optional endpoint override, optional Prefect credentials block."""

    region: str
    endpoint_url: str | None = None
    credentials_block: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AwsConfig:
        return cls(settings.aws_region, settings.aws_endpoint_url, settings.aws_credentials_block)


class AwsConfigError(RuntimeError):
    """A configured AWS resource (secret, credentials block) cannot be used."""


def session(cfg: AwsConfig):  # -> boto3.Session
    import boto3

    if cfg.credentials_block:
        from prefect_aws import AwsCredentials

        try:
            creds = AwsCredentials.load(cfg.credentials_block)
        except Exception as exc:  # noqa: BLE001 — the block's name is safe to show, its contents are not
            raise AwsConfigError(
                f"cannot load the AwsCredentials block {cfg.credentials_block!r}: {type(exc).__name__}"
            ) from None
        return creds.get_boto3_session()
    return boto3.Session(region_name=cfg.region)


def client(service: str, cfg: AwsConfig) -> Any:
    """A boto3 client of ``service`` in the configured region and endpoint."""
    kwargs: dict[str, Any] = {"region_name": cfg.region}
    if cfg.endpoint_url:
        kwargs["endpoint_url"] = cfg.endpoint_url
    return session(cfg).client(service, **kwargs)


def secret_value(secrets: Any, secret_id: str, field: str = "password") -> str:
    """A Secrets Manager secret's value: the plain SecretString, or ``field`` of a JSON one (RDS style)."""
    try:
        raw = secrets.get_secret_value(SecretId=secret_id)["SecretString"]
    except Exception as exc:  # noqa: BLE001
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise AwsConfigError(f"cannot read secret {secret_id!r}: {code}") from None
    text = raw.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            raise AwsConfigError(f"secret {secret_id!r} looks like JSON but does not parse") from None
        if field not in doc or not isinstance(doc[field], str):
            raise AwsConfigError(f"secret {secret_id!r} has no string field {field!r}")
        return doc[field]
    if not text:
        raise AwsConfigError(f"secret {secret_id!r} is empty")
    return raw
