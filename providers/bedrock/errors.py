"""Bedrock's and S3's error words (``providers.errors``): botocore's ``ClientError`` codes."""

from __future__ import annotations

from typing import Any

from providers.errors import ErrorWords, Said

__all__ = ["WORDS", "said_by_boto"]

WORDS = ErrorWords(
    # The credentials or their permissions (IAM, STS, S3's own words): nothing is wrong with the items.
    account=frozenset({"AccessDeniedException", "AccessDenied", "UnrecognizedClientException",
                       "ExpiredTokenException", "ExpiredToken", "InvalidSignatureException", "SignatureDoesNotMatch",
                       "IncompleteSignature", "MissingAuthenticationTokenException", "InvalidClientTokenId",
                       "InvalidAccessKeyId", "AllAccessDisabled", "NoSuchBucket"}),
    busy=frozenset({"ServiceQuotaExceededException"}),  # as many jobs in progress as the account may have
    passing=frozenset({"ThrottlingException", "InternalServerException", "ServiceUnavailableException",
                       "ConflictException"}),
    not_found=frozenset({"ResourceNotFoundException"}),  # a job deleted, or not known yet right after its create
)


def said_by_boto(exc: Any) -> Said:
    """A botocore ``ClientError``: its code, its message and the HTTP status."""
    error = exc.response.get("Error", {})
    code = error.get("Code") or "UnknownError"
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return Said(status, code, f"{code}: {error.get('Message') or exc}")
