"""What tierline knows of AWS Bedrock's batch inference and runtime."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from core.deadlines import DAY, ProviderWindows
from core.limits import ProviderLimits
from core.spec import Pricing, ProviderSpec, SyncClient
from providers.bedrock.wire import Wire
from providers.wire import REFUSED_AT_CREATE

if TYPE_CHECKING:
    from providers.base import BatchProvider
    from streams.settings import Settings

__all__ = ["base_model", "spec"]

#: A job says when it expires (its timeoutDurationInHours, at most 7 days); its output stays in the
#: account's own bucket.
WINDOWS = ProviderWindows(completion_s=7 * DAY, retention_s=float("inf"))
_GEOGRAPHIES = frozenset({"us", "eu", "apac", "global", "jp", "au", "ca", "us-gov"})


def base_model(model: str) -> str:
    """``anthropic.claude-...`` from a cross-region inference profile id or a model or profile ARN: the name
    its price is listed under."""
    model = model.rsplit("/", 1)[-1]
    geography, _, rest = model.partition(".")
    return rest if geography in _GEOGRAPHIES and rest else model


def spec(settings: Settings) -> ProviderSpec:
    """Bedrock's caps are per-model service quotas: the account's, from the settings."""
    limits = ProviderLimits(max_items=settings.bedrock_max_records, max_bytes=settings.bedrock_max_file_bytes,
                            custom_id=re.compile(r".{1,512}", re.DOTALL), endpoints=None,
                            min_items=settings.bedrock_min_records)

    def batches() -> BatchProvider:
        from providers.bedrock.batches import BedrockBatches, BedrockConfig

        return BedrockBatches(BedrockConfig(
            bucket=settings.bedrock_bucket, role_arn=settings.bedrock_role_arn, prefix=settings.bedrock_prefix,
            region=settings.bedrock_region, timeout_hours=settings.bedrock_timeout_hours))

    def sync_client(calls: int) -> SyncClient:
        from providers.bedrock.runtime import BedrockRuntime  # boto3 is 10 MB: imported when first needed

        return BedrockRuntime(settings.bedrock_region, calls)

    def credential_missing() -> str | None:
        import boto3

        return None if boto3.Session().get_credentials() is not None else \
            "give the worker AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role)"

    return ProviderSpec(
        name="bedrock", limits=limits, windows=WINDOWS, wire=Wire(),
        pricing=Pricing("bedrock", "aws", base_model), batches=batches,
        sync_client=sync_client,
        # asked only of a worker set up for Bedrock
        credential_missing=credential_missing if settings.bedrock_bucket else None,
        bills_job_model=True, calls_below_minimum=settings.bedrock_sync_fallback,
        min_items_setting="TIERLINE_BEDROCK_MIN_RECORDS",
        cannot=REFUSED_AT_CREATE)

