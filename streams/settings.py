"""Every tierline setting, declared once with its environment variable and default.

Provider credentials are not settings of ours: the official SDKs read
``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``, ``OPENAI_API_KEY`` and
``OPENAI_BASE_URL`` themselves, google-genai ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``) and
``GOOGLE_GEMINI_BASE_URL``, and boto3 its AWS credentials and
``AWS_ENDPOINT_URL_BEDROCK`` / ``AWS_ENDPOINT_URL_S3``, so the same worker talks to
the real providers or to the emulator without a change.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import orjson

from core.admission import parse_limits
from core.callbacks import parse_secrets
from core.flex import DEFAULT_FLEX_MODELS, parse_models
from core.limits import Caps
from core.retry import RetryPolicy
from core.routing import TierTimes
from core.spec import Catalogue
from providers.lanes.declaration import Lane, LaneError, parse_lanes
from schemas.topics import Topics
from streams.kafka.connection import ConnectionSettingsError, KafkaConnection

__all__ = ["Settings", "SettingsError", "RateLimit"]


class RateLimit(NamedTuple):
    """Per minute, for the async tier's calls to one provider or model (0: no limit)."""

    requests: float
    tokens: float


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: The providers' SDKs' own variables: the worker logs which are set (the keys masked), and each may be read from
#: a file (``NAME_FILE``, streams.secret_files) as a setting may.
PROVIDER_ENV = ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_BASE_URL", "OPENAI_API_KEY",
                "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_WEBHOOK_SECRET", "HTTPS_PROXY", "NO_PROXY",
                "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_BEDROCK", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
                "AWS_ENDPOINT_URL_S3", "GOOGLE_GEMINI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY")


class SettingsError(ValueError):
    """A setting's environment variable holds a value that cannot be used."""


def _keys(raw: str) -> frozenset[str]:
    """Comma-separated keys, blanks dropped."""
    return frozenset(key.strip() for key in raw.split(",") if key.strip())


def _flag(raw: str) -> bool:
    """A yes/no setting: true, false, yes, no, 1 or 0."""
    word = raw.strip().lower()
    if word not in ("true", "false", "yes", "no", "1", "0"):
        raise ValueError(raw)
    return word in ("true", "yes", "1")


def _setting(env: str, default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True)
class Settings:
    """tierline's configuration: one frozen object, read from the environment."""

    broker: str = _setting(
        "TIERLINE_BROKER", "kafka://127.0.0.1:9092", "Kafka bootstrap server(s), comma separated."
    )
    topic_prefix: str = _setting(
        "TIERLINE_TOPIC_PREFIX", "tierline.", "Prefix of every topic name."
    )
    partitions: int = _setting(
        "TIERLINE_PARTITIONS", 4, "Partitions of every topic tierline creates."
    )
    replication: int = _setting(
        "TIERLINE_REPLICATION", 1, "Replication factor of every topic tierline creates."
    )
    app_id: str = _setting(
        "TIERLINE_APP_ID", "tierline", "Consumer group and Faust application id."
    )
    instance_id: str = _setting(
        "TIERLINE_INSTANCE_ID", "",
        "This replica's stable name (worker-1, a StatefulSet pod's name): static group membership, so that a "
        "restarted worker takes its partitions back at once instead of after the session timeout. Unique per "
        "replica; empty: dynamic membership.",
    )
    kafka_security_protocol: str = _setting(
        "TIERLINE_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT",
        "How every Kafka client connects: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    )
    kafka_sasl_mechanism: str = _setting(
        "TIERLINE_KAFKA_SASL_MECHANISM", "PLAIN",
        "With SASL: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, or OAUTHBEARER (Amazon MSK's IAM auth, signed with "
        "the worker's AWS credentials; needs the msk extra).",
    )
    kafka_sasl_username: str = _setting(
        "TIERLINE_KAFKA_SASL_USERNAME", "", "SASL user name (PLAIN and SCRAM; Confluent Cloud: the API key)."
    )
    kafka_sasl_password: str = _setting(
        "TIERLINE_KAFKA_SASL_PASSWORD", "", "SASL password (Confluent Cloud: the API secret). Never logged."
    )
    kafka_max_record_bytes: int = _setting(
        "TIERLINE_KAFKA_MAX_RECORD_BYTES", 1_000_000,
        "The largest record (and record batch) tierline writes: topics it creates allow this much plus "
        "48,588 bytes (max.message.bytes; the default makes Kafka's own 1,048,588), and a worker refuses "
        "existing topics that allow less. A request larger than this, less 4 KB, is a dead letter.",
    )
    kafka_ssl_cafile: str = _setting(
        "TIERLINE_KAFKA_SSL_CAFILE", "",
        "PEM file of the CA(s) that signed the brokers' certificates (empty: the system's trusted CAs).",
    )
    kafka_ssl_certfile: str = _setting(
        "TIERLINE_KAFKA_SSL_CERTFILE", "", "PEM client certificate, for brokers that authenticate clients by TLS."
    )
    kafka_ssl_keyfile: str = _setting(
        "TIERLINE_KAFKA_SSL_KEYFILE", "", "PEM private key of that client certificate."
    )
    web_port: int = _setting(
        "TIERLINE_WEB_PORT", 6066, "Port of the worker's web server."
    )
    web_host: str = _setting(
        "TIERLINE_WEB_HOST", "127.0.0.1",
        "Address the web server (realtime endpoint, /metrics, /livez, /readyz) listens on; 0.0.0.0: every "
        "interface, which needs TIERLINE_REALTIME_KEYS for the realtime endpoint.",
    )
    web_read_timeout_s: float = _setting(
        "TIERLINE_WEB_READ_TIMEOUT_S", 30.0,
        "A connection that has not sent a whole request head this long after opening (or after its last "
        "answer) is closed; a realtime call whose body has not all arrived this long after its head is "
        "answered 408.",
    )
    realtime_api_keys: str = _setting(
        "TIERLINE_REALTIME_KEYS", "",
        "Keys clients may call the realtime endpoint with, comma separated, sent as their SDK's API key. "
        "Unset: open on a loopback address only. Never logged.",
    )
    status_api_keys: str = _setting(
        "TIERLINE_STATUS_KEYS", "",
        "Keys that open the status page (/ and /status.json), comma separated, as ?key=KEY or a bearer token; any of "
        "TIERLINE_REALTIME_KEYS opens it too. With none: open on a loopback address only. Never logged.",
    )
    data_dir: str = _setting(
        "TIERLINE_DATA_DIR", ".tierline-data", "Where the worker spools batch input files."
    )
    ledger_in_memory: int = _setting(
        "TIERLINE_LEDGER_IN_MEMORY", 500_000,
        "Successes and ended attempts the worker's ledger holds in memory (about 100 bytes each); every one is "
        "also kept in a file of TIERLINE_DATA_DIR, at about 3.5 µs a look-up, from which a restart reads on "
        "where it left off. 0: all in memory, and the ledger topic read whole at every start.",
    )
    batch_max_items: int = _setting(
        "TIERLINE_BATCH_MAX_ITEMS", 0, "Close a batch at this many items (0: the provider's cap)."
    )
    batch_max_bytes: int = _setting(
        "TIERLINE_BATCH_MAX_BYTES", 0, "Close a batch at this many input bytes (0: the provider's cap)."
    )
    batch_max_wait_s: float = _setting(
        "TIERLINE_BATCH_MAX_WAIT_S", 60.0, "Close a batch this long after its first item arrived."
    )
    max_attempts: int = _setting(
        "TIERLINE_MAX_ATTEMPTS", 3, "Attempts per item before a retryable failure is final."
    )
    truncated_fails: bool = _setting(
        "TIERLINE_TRUNCATED_FAILS", False,
        "An answer the model cut off at the token limit fails (truncated) and is retried, like one that does not "
        "fit its schema (true/false). One with a schema always fails so: it cannot parse. By default one without "
        "is a result, its stop reason in its response.",
    )
    retry_base_delay_s: float = _setting(
        "TIERLINE_RETRY_BASE_DELAY_S", 30.0, "Backoff after a first failed attempt; doubles each time."
    )
    retry_max_delay_s: float = _setting(
        "TIERLINE_RETRY_MAX_DELAY_S", 3600.0, "Longest backoff between attempts."
    )
    retry_park_s: float = _setting(
        "TIERLINE_RETRY_PARK_S", 300.0,
        "How often retries waiting past it for their not_before are written again at the end of their partition, "
        "so that the commit passes the work behind them: a restart reads again at most about this much of it.",
    )
    poll_initial_s: float = _setting(
        "TIERLINE_POLL_INITIAL_S", 1.0,
        "First interval between polls of a submitted batch, and again after its state changes; it grows by half "
        "at each poll that finds the state unchanged, up to TIERLINE_POLL_MAX_S. A batch whose provider counts its "
        "requests as they run is polled sooner when that pace says it will be done.",
    )
    poll_max_s: float = _setting(
        "TIERLINE_POLL_MAX_S", 300.0, "Longest interval between polls while a batch is unchanged."
    )
    daily_budget_usd: float = _setting(
        "TIERLINE_DAILY_BUDGET_USD", 0.0,
        "Spend cap per UTC day, over all workers and every tier (0: none): batches and async or flex calls that "
        "would pass it wait, realtime calls are answered 429.",
    )
    budget_lease_usd: float = _setting(
        "TIERLINE_BUDGET_LEASE_USD", 0.5,
        "With a daily budget: the share of it a worker reserves at a time for its synchronous calls (async, flex, "
        "realtime, Bedrock's fallback), spent call by call without a round trip each; near the cap, just a "
        "call's estimate. Unspent, it goes back when the worker moves to another lease or stops.",
    )
    prices_file: str = _setting(
        "TIERLINE_PRICES_FILE", "", "Price table (JSON) for cost estimates; empty: the shipped one."
    )
    providers_file: str = _setting(
        "TIERLINE_PROVIDERS_FILE", "",
        "Extra batch providers of OpenAI's Files + Batch shape (TOML or JSON; see docs/providers.md, Providers "
        "by configuration); empty: none.",
    )
    provider_plugins: str = _setting(
        "TIERLINE_PROVIDER_PLUGINS", "",
        "Providers of your own, comma-separated module:function names: each function takes the settings and "
        "returns the provider's spec (core.spec.ProviderSpec); empty: none.",
    )
    stall_after_s: float = _setting(
        "TIERLINE_STALL_AFTER_S", 3600.0, "Alert when a batch's provider status has not changed for this long."
    )
    expiry_grace_s: float = _setting(
        "TIERLINE_EXPIRY_GRACE_S", 3600.0,
        "How long past the provider's expiry a batch may stay unended before tierline gives up on it.",
    )
    not_found_grace_s: float = _setting(
        "TIERLINE_NOT_FOUND_GRACE_S", 600.0,
        "How long after its create a batch the provider answers 404 for is still polled as one that exists "
        "(providers are known to answer 404 for a few seconds); past it, its items are retried.",
    )
    results_warn_before_s: float = _setting(
        "TIERLINE_RESULTS_WARN_BEFORE_S", 3 * 86_400.0,
        "Alert when results not yet downloaded are this close to the provider deleting them.",
    )
    rebalance_timeout_s: float = _setting(
        "TIERLINE_REBALANCE_TIMEOUT_S", 5.0, "Consumer group rebalance timeout."
    )
    session_timeout_s: float = _setting(
        "TIERLINE_SESSION_TIMEOUT_S", 10.0, "Consumer group session timeout: a worker unconfirmed for longer "
        "gives its partitions up without waiting to hear it from the group.",
    )
    confirmed_within: float = _setting(
        "TIERLINE_CONFIRMED_WITHIN_S", 0.0,
        "How recent the broker's last word that a worker still holds its partitions (an accepted commit) must "
        "be before it creates, settles or commits anything; at most a third of TIERLINE_SESSION_TIMEOUT_S (0: "
        "that third), so that what it begins lands before the group can give the partitions to another worker "
        "(streams.kafka.fence).",
    )
    shutdown_s: float = _setting(
        "TIERLINE_SHUTDOWN_S", 15.0,
        "How long a worker may take to stop (SIGTERM) before it exits all the same: cut off from Kafka, what it "
        "could not make durable is left for the next owner to read again.",
    )
    log_format: str = _setting(
        "TIERLINE_LOG_FORMAT", "auto", "console, json, or auto (console on a terminal, else json)."
    )
    log_level: str = _setting("TIERLINE_LOG_LEVEL", "info", "debug, info, warning or error.")
    batch_turnaround_s: float = _setting(
        "TIERLINE_BATCH_TURNAROUND_S", 86_400.0,
        "What the batch tier promises: an item with a sooner deadline is never routed to it.",
    )
    async_sla_s: float = _setting(
        "TIERLINE_ASYNC_SLA_S", 900.0, "Async tier: arrival to result; slower items are logged and counted."
    )
    realtime_sla_s: float = _setting(
        "TIERLINE_REALTIME_SLA_S", 30.0, "Realtime items from Kafka: arrival to result, likewise."
    )
    async_concurrency: int = _setting(
        "TIERLINE_ASYNC_CONCURRENCY", 8, "Async tier: provider calls in flight at once, per worker."
    )
    flex_models: str = _setting(
        "TIERLINE_FLEX_MODELS", ",".join(DEFAULT_FLEX_MODELS),
        "OpenAI models (and their snapshots) offered flex processing (service_tier: flex), comma-separated.",
    )
    flex_concurrency: int = _setting(
        "TIERLINE_FLEX_CONCURRENCY", 8, "Flex tier: provider calls in flight at once, per worker."
    )
    flex_limits: str = _setting(
        "TIERLINE_FLEX_LIMITS", "",
        'Flex tier: requests and tokens per minute, as TIERLINE_ASYNC_LIMITS: {"openai/o4-mini": {"rpm": 500}} '
        "(none: no limit).",
    )
    flex_timeout_s: float = _setting(
        "TIERLINE_FLEX_TIMEOUT_S", 900.0, "Flex tier: how long one call may take (flex answers slowly)."
    )
    flex_sla_s: float = _setting(
        "TIERLINE_FLEX_SLA_S", 1800.0, "Flex tier: arrival to result; the router sends only deadlines at least this "
        "far to flex, and the agent falls back to the standard tier when waiting would pass the deadline.",
    )
    flex_max_refusals: int = _setting(
        "TIERLINE_FLEX_MAX_REFUSALS", 10, "Flex tier: 429 refusals (resource unavailable) waited out before the "
        "call goes to the standard tier at full price.",
    )
    async_limits: str = _setting(
        "TIERLINE_ASYNC_LIMITS", "",
        'Async tier: requests and tokens per minute, per provider or provider/model, as JSON: '
        '{"anthropic": {"rpm": 50, "tpm": 40000}, "openai/gpt-4o-mini": {"rpm": 500}} (none: no limit).',
    )
    openai_output_expires_s: int = _setting(
        "TIERLINE_OPENAI_OUTPUT_EXPIRES_S", 7 * 86_400,
        "OpenAI: how long after it is written a batch's output and error file is kept (output_expires_after; "
        "3600 to 2592000). tierline reads results as soon as a batch ends; a week leaves room for an outage.",
    )
    keep_input_files: bool = _setting(
        "TIERLINE_KEEP_INPUT_FILES", False,
        "Keep each OpenAI batch's uploaded input file after its results are on Kafka (true/false); by "
        "default it is deleted then.",
    )
    enqueued_token_limits: str = _setting(
        "TIERLINE_ENQUEUED_TOKEN_LIMITS", "",
        "Batch tier: input tokens that may wait at a provider at once, per model, as provider/model=TOKENS "
        "(provider/* for every model), comma separated: a batch that does not fit is held until it does, one "
        "larger than the limit is split (none: no limit).",
    )
    callback_secrets: str = _setting(
        "TIERLINE_CALLBACK_SECRETS", "",
        "Standard Webhooks secrets that sign async-tier callbacks (whsec_ and base64), comma separated: each "
        "signs every callback, so a receiver verifies with the old or the new one while they are rotated. "
        "Callbacks need this or TIERLINE_CALLBACK_SECRET. Never logged.",
    )
    callback_secret: str = _setting(
        "TIERLINE_CALLBACK_SECRET", "",
        "Deprecated: a shared secret for the older Tierline-Signature header, sent beside the Standard "
        "Webhooks ones while it is set.",
    )
    webhook_url: str = _setting(
        "TIERLINE_WEBHOOK_URL", "",
        "The workers' public base URL (https://tierline.example.com), where providers reach POST /webhooks/openai "
        "and /webhooks/gemini: Gemini jobs are created with it as their webhook_config (OpenAI's endpoint is set "
        "in its dashboard). Empty: Gemini jobs are polled only.",
    )
    gemini_webhook_secret: str = _setting(
        "TIERLINE_GEMINI_WEBHOOK_SECRET", "",
        "The Standard Webhooks secret (whsec_...) Gemini signs its batch webhooks with; OpenAI's is the SDK's "
        "OPENAI_WEBHOOK_SECRET. A webhook that does not verify is refused (401). Never logged.",
    )
    webhook_poll_max_s: float = _setting(
        "TIERLINE_WEBHOOK_POLL_MAX_S", 1800.0,
        "With a provider's webhooks verified (its secret set): the longest interval between polls of its batches, "
        "which its webhooks cut short; polling stays the safety net.",
    )
    callback_allow_private: int = _setting(
        "TIERLINE_CALLBACK_ALLOW_PRIVATE", 0, "1: callbacks may go to loopback, link-local and private addresses."
    )
    callback_attempts: int = _setting(
        "TIERLINE_CALLBACK_ATTEMPTS", 5, "Attempts to deliver a callback before a failure event says it never was."
    )
    callback_retry_s: float = _setting(
        "TIERLINE_CALLBACK_RETRY_S", 1.0, "Wait after a first failed callback; doubles each time."
    )
    underfilled_wait_s: float = _setting(
        "TIERLINE_UNDERFILLED_WAIT_S", 3600.0,
        "A batch below its provider's minimum (Bedrock's records per job) waits this much longer for items "
        "to fill it; then its items are called one by one (TIERLINE_BEDROCK_SYNC_FALLBACK).",
    )
    bedrock_sync_fallback: bool = _setting(
        "TIERLINE_BEDROCK_SYNC_FALLBACK", True,
        "A Bedrock batch that never reaches TIERLINE_BEDROCK_MIN_RECORDS goes to the async tier: each item "
        "called through InvokeModel or Converse at full price (true/false); false: they fail "
        "below_minimum_records.",
    )
    bedrock_bucket: str = _setting(
        "TIERLINE_BEDROCK_BUCKET", "", "S3 bucket of Bedrock jobs' input and output (required for bedrock items)."
    )
    bedrock_prefix: str = _setting(
        "TIERLINE_BEDROCK_PREFIX", "tierline",
        "Key prefix in that bucket: a job's input is PREFIX/BATCH_KEY/input.jsonl, "
        "its output under PREFIX/BATCH_KEY/output/.",
    )
    bedrock_role_arn: str = _setting(
        "TIERLINE_BEDROCK_ROLE_ARN", "", "IAM role Bedrock assumes to read the input and write the output."
    )
    bedrock_region: str = _setting(
        "TIERLINE_BEDROCK_REGION", "",
        "AWS region of the Bedrock jobs and bucket (empty: boto3's own: AWS_REGION, ~/.aws).",
    )
    bedrock_timeout_hours: int = _setting(
        "TIERLINE_BEDROCK_TIMEOUT_HOURS", 168,
        "timeoutDurationInHours of each Bedrock job, 24 to 168; records left undone are retried one by one.",
    )
    bedrock_max_records: int = _setting(
        "TIERLINE_BEDROCK_MAX_RECORDS", 50_000, "Records per Bedrock job: your account's quota for the model."
    )
    bedrock_max_file_bytes: int = _setting(
        "TIERLINE_BEDROCK_MAX_FILE_BYTES", 1 << 30, "Bytes per Bedrock job input file: your account's quota."
    )
    bedrock_min_records: int = _setting(
        "TIERLINE_BEDROCK_MIN_RECORDS", 100,
        "Fewest records Bedrock accepts in a job (its quota); smaller batches wait for more items.",
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read every setting from ``environ`` (default: the process environment)."""
        source: Mapping[str, str] = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = source.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            kind: Any = type(f.default)
            try:
                values[f.name] = _flag(raw) if kind is bool else kind(raw)
            except ValueError:
                raise SettingsError(
                    f"{f.metadata['env']}={raw!r} is not a valid {kind.__name__}: {f.metadata['doc']}"
                ) from None
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        try:
            self.kafka.check()
        except ConnectionSettingsError as exc:
            raise SettingsError(str(exc)) from None
        if self.kafka_max_record_bytes < 16_384:
            raise SettingsError("TIERLINE_KAFKA_MAX_RECORD_BYTES must be at least 16384")
        if self.partitions < 1:
            raise SettingsError("TIERLINE_PARTITIONS must be at least 1")
        if self.max_attempts < 1:
            raise SettingsError("TIERLINE_MAX_ATTEMPTS must be at least 1")
        if not self.budget_lease_usd > 0:
            raise SettingsError("TIERLINE_BUDGET_LEASE_USD must be above 0 (US dollars)")
        if self.ledger_in_memory < 0:
            raise SettingsError("TIERLINE_LEDGER_IN_MEMORY must be 0 (all in memory) or more")
        if self.batch_max_wait_s <= 0:
            raise SettingsError("TIERLINE_BATCH_MAX_WAIT_S must be more than 0")
        if self.retry_park_s <= 0:
            raise SettingsError("TIERLINE_RETRY_PARK_S must be more than 0")
        self.catalogue  # noqa: B018 - a providers file or plug-in that cannot work is said now, not at the first item
        try:
            parse_secrets(self.callback_secrets)
        except ValueError as exc:
            raise SettingsError(f"TIERLINE_CALLBACK_SECRETS: {exc}") from None
        if self.log_format not in ("auto", "console", "json"):
            raise SettingsError("TIERLINE_LOG_FORMAT must be auto, console or json")
        self._async_limits()  # says what is wrong with it now rather than at the first async item
        self._async_limits(flex=True)
        if not 3_600 <= self.openai_output_expires_s <= 2_592_000:
            raise SettingsError("TIERLINE_OPENAI_OUTPUT_EXPIRES_S must be from 3600 (1 h) to 2592000 (30 days), "
                                "OpenAI's range")
        try:  # likewise
            parse_limits(self.enqueued_token_limits)
        except ValueError as exc:
            raise SettingsError(f"TIERLINE_ENQUEUED_TOKEN_LIMITS: {exc}") from None
        if not 0 <= self.confirmed_within <= self.session_timeout_s / 3:
            raise SettingsError(f"TIERLINE_CONFIRMED_WITHIN_S ({self.confirmed_within:g}) must be at most a third of "
                                f"TIERLINE_SESSION_TIMEOUT_S ({self.session_timeout_s:g}): a worker acting on an older "
                                "confirmation may act on partitions the group has given to another")
        if self.shutdown_s <= 0:
            raise SettingsError("TIERLINE_SHUTDOWN_S must be above 0")
        if not 24 <= self.bedrock_timeout_hours <= 168:
            raise SettingsError("TIERLINE_BEDROCK_TIMEOUT_HOURS must be from 24 to 168 (Bedrock's range)")
        if not 1 <= self.bedrock_min_records <= self.bedrock_max_records:
            raise SettingsError("TIERLINE_BEDROCK_MIN_RECORDS must be from 1 to TIERLINE_BEDROCK_MAX_RECORDS")
        if self.bedrock_bucket and 0 < self.batch_max_items < self.bedrock_min_records:
            raise SettingsError(f"TIERLINE_BATCH_MAX_ITEMS ({self.batch_max_items}) is below "
                                f"TIERLINE_BEDROCK_MIN_RECORDS ({self.bedrock_min_records}): every Bedrock batch "
                                "would be too small to submit")

    def _async_limits(self, flex: bool = False) -> dict[str, RateLimit]:
        """TIERLINE_ASYNC_LIMITS (or TIERLINE_FLEX_LIMITS) read: provider or provider/model → (requests, tokens)
        per minute."""
        name, text = ("TIERLINE_FLEX_LIMITS", self.flex_limits) if flex else ("TIERLINE_ASYNC_LIMITS",
                                                                             self.async_limits)
        try:
            table = orjson.loads(text) if text else {}
            return {key: RateLimit(float(entry.get("rpm", 0)), float(entry.get("tpm", 0)))
                    for key, entry in table.items()}
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            raise SettingsError(f'{name} must be JSON like {{"anthropic": {{"rpm": 50, "tpm": 40000}}}}, '
                                f"not {text!r}") from None

    def async_limit(self, provider: str, model: str, flex: bool = False) -> RateLimit:
        """Requests and tokens per minute for the async (or flex) tier's calls to this model; 0 is no limit."""
        limits = self._async_limits(flex)
        return limits.get(f"{provider}/{model}") or limits.get(provider) or RateLimit(0.0, 0.0)

    @cached_property
    def token_limits(self) -> dict[str, int]:
        """TIERLINE_ENQUEUED_TOKEN_LIMITS read (``core.admission``; checked when the settings are read)."""
        return parse_limits(self.enqueued_token_limits)

    @cached_property
    def realtime_keys(self) -> frozenset[str]:
        return _keys(self.realtime_api_keys)

    @cached_property
    def status_keys(self) -> frozenset[str]:
        """Whoever holds one may read the status page: its own keys and the realtime endpoint's."""
        return _keys(self.status_api_keys) | self.realtime_keys

    @property
    def realtime_open_to_all(self) -> bool:
        """No keys, on a loopback address: only this machine can call it (the demo, a sidecar)."""
        return not self.realtime_keys and is_loopback(self.web_host)

    @property
    def confirmed_within_s(self) -> float:
        """TIERLINE_CONFIRMED_WITHIN_S, or a third of the session timeout."""
        return self.confirmed_within or self.session_timeout_s / 3

    @property
    def tier_times(self) -> TierTimes:
        return TierTimes(self.async_sla_s, self.batch_turnaround_s, self.flex_sla_s)

    @property
    def bootstrap_servers(self) -> str:
        """The broker list without Faust's ``kafka://`` scheme, as aiokafka wants it."""
        return ",".join(part.split("://", 1)[-1] for part in self.broker.split(","))

    @cached_property
    def kafka(self) -> KafkaConnection:
        """How every Kafka client of this worker or command connects."""
        return KafkaConnection(
            bootstrap_servers=self.bootstrap_servers, security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism, sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password, ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile, ssl_keyfile=self.kafka_ssl_keyfile,
            max_record_bytes=self.kafka_max_record_bytes)

    @cached_property
    def topics(self) -> Topics:
        """Every topic's full name."""
        return Topics.with_prefix(self.topic_prefix)

    def caps(self, provider: str) -> Caps:
        """A known provider's caps."""
        return self.catalogue.caps(provider)

    @cached_property
    def catalogue(self) -> Catalogue:
        """Every provider this deployment knows (``providers.catalogue``): built once, here."""
        from providers.catalogue import PluginError, build

        try:
            return build(self)
        except PluginError as exc:
            raise SettingsError(str(exc)) from None

    @cached_property
    def lanes(self) -> list[Lane]:
        """The providers ``TIERLINE_PROVIDERS_FILE`` declares (``providers.lanes``)."""
        if not self.providers_file:
            return []
        path = Path(self.providers_file)
        try:
            raw = path.read_bytes()
            doc = tomllib.loads(raw.decode()) if path.suffix == ".toml" else orjson.loads(raw)
            return parse_lanes(doc, f"TIERLINE_PROVIDERS_FILE {path}")
        except OSError as exc:
            raise SettingsError(f"TIERLINE_PROVIDERS_FILE {path}: cannot be read: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"TIERLINE_PROVIDERS_FILE {path}: not valid "
                                f"{'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}") from None
        except LaneError as exc:
            raise SettingsError(str(exc)) from None

    @property
    def plugin_names(self) -> tuple[str, ...]:
        """``TIERLINE_PROVIDER_PLUGINS``, one ``module:function`` each."""
        return tuple(name.strip() for name in self.provider_plugins.split(",") if name.strip())

    @property
    def flex_model_names(self) -> tuple[str, ...]:
        return parse_models(self.flex_models)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.retry_base_delay_s, self.retry_max_delay_s)

    @property
    def prices_path(self) -> Path:
        return Path(self.prices_file) if self.prices_file else Path(__file__).parent / "data" / "prices.json"

    @property
    def spool_dir(self) -> Path:
        return Path(self.data_dir) / "spool"

    @classmethod
    def documented(cls) -> list[tuple[str, Any, str]]:
        """(environment variable, default, description) for every setting."""
        return [(f.metadata["env"], f.default, f.metadata["doc"]) for f in fields(cls)]
