"""The emulator's HTTP server: the providers' batch and synchronous APIs on one port, plus test hooks.

Point the SDKs at it with ``OPENAI_BASE_URL=http://127.0.0.1:PORT/v1``,
``ANTHROPIC_BASE_URL=http://127.0.0.1:PORT``, ``AWS_ENDPOINT_URL_BEDROCK=http://127.0.0.1:PORT`` and
``AWS_ENDPOINT_URL_BEDROCK_RUNTIME=http://127.0.0.1:PORT`` (Bedrock's files live in a real
S3-compatible server: ``AWS_ENDPOINT_URL_S3``) and ``GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:PORT/gemini``.
``GET /_emulator/batches`` lists every batch accepted, with its custom_ids; ``GET /_emulator/requests``
counts the API requests answered, in all and by route.
``POST /_emulator/account`` ``{"provider": "anthropic", "refusal": "no_credit"}`` makes that
provider refuse batch creates as an account out of credit does (``unauthorized``: a revoked or
unknown credential; ``forbidden``: a credential without the permission; ``null``: as normal again),
each in that provider's own words (``ACCOUNT_REFUSALS``; Bedrock and Gemini bill no credit up front,
so they have no ``no_credit``). ``POST /_emulator/outage`` ``{"provider": "bedrock", "reads": 3}`` makes
that provider's next 3 reads of its batches (status, listing, results) fail with its own 5xx.
``POST /_emulator/lose`` ``{"provider": "openai"}`` forgets every batch of that provider (404 from then on).
``POST /_emulator/hold`` ``{"hold": true}`` keeps OpenAI's batches in progress as they are (a stalled batch)
until ``{"hold": false}``.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from aiohttp import web

from providers.lanes.declaration import Lane
from emulator.anthropic_api import AnthropicEmulator
from emulator.anthropic_api import error as anthropic_error
from emulator.bedrock_api import BedrockEmulator
from emulator.bedrock_api import error as aws_error
from emulator.bedrock_runtime import BedrockRuntimeEmulator
from emulator.behaviour import Behaviour
from emulator.gemini_api import GeminiEmulator
from emulator.gemini_api import PREFIX as GEMINI_PREFIX
from emulator.gemini_api import error as gemini_error
from emulator.openai_api import Dialect, OpenAIEmulator
from emulator.openai_api import error as openai_error
from emulator.realtime_api import Flex, Pace, RateLimit, RealtimeEmulator
from emulator.recorder import Recorder
from emulator.webhooks import Notifier

__all__ = ["EmulatorConfig", "create_app", "serve"]


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """How the emulated providers behave."""

    batch_seconds: float = 2.0
    error_rate: float = 0.0
    seed: int = 0
    data_dir: Path | None = None
    #: The expiry each batch advertises (``expires_at``), 24 h as at the real providers. Not
    #: enforced: a batch slower than it looks like one the provider failed to expire.
    expires_after_s: float = 86_400.0
    #: The synchronous endpoints: time to first token and between tokens when streaming, and a
    #: limit of requests per minute over them all (0: none) answered with 429.
    first_token_s: float = 0.0
    token_s: float = 0.0
    requests_per_minute: int = 0
    #: Bedrock: the fewest records a job may hold (its per-model quota; 100 by default).
    bedrock_min_records: int = 100
    #: Bedrock: jobs in progress per model the account may have (0: no limit).
    bedrock_max_jobs: int = 0
    #: OpenAI: input tokens per model that may wait in unfinished batches (0: no limit). A batch
    #: past it is accepted, then fails validation with ``token_limit_exceeded``, as OpenAI's do.
    openai_enqueued_token_limit: int = 0
    #: Anthropic: requests that may be processing across the workspace's batches (0: no limit); a
    #: create past it is refused with 429 ``rate_limit_error``.
    anthropic_queue_limit: int = 0
    #: Gemini: batch jobs pending or running the project may have (0: no limit); a create past it is
    #: refused with 429 ``RESOURCE_EXHAUSTED``, after the upload went through.
    gemini_max_jobs: int = 0
    #: All: retrieve (and Anthropic's results) answer 404 for this long after a create, as the real
    #: APIs are known to for a few seconds.
    transient_404_s: float = 0.0
    #: All: the first download of each batch's results breaks off half way; OpenAI says
    #: ``error_file_id: ""`` of a clean batch and writes server errors with ``status_code: 0``.
    messy_results: bool = False
    #: OpenAI's flex processing (``service_tier: "flex"``): added latency, and the share of calls refused with
    #: 429 resource unavailable.
    flex_latency_s: float = 0.0
    flex_unavailable_rate: float = 0.0
    #: Declared lanes (``providers.lanes``): each served as its own account in OpenAI's dialect with its quirks,
    #: under ``/NAME/v1`` (``/NAME/openai`` for Azure, which also wants ``api-version`` and ``api-key``).
    lanes: tuple[Lane, ...] = ()
    #: More accounts speaking Anthropic's Message Batches API, each its own under ``/NAME`` (a gateway in front
    #: of Claude, or a provider plug-in of your own, as ``tests/gateway`` is).
    anthropic_accounts: tuple[str, ...] = ()


#: What an account in trouble answers to a batch create, in each provider's words.
ACCOUNT_REFUSALS = {
    ("anthropic", "no_credit"): lambda: anthropic_error(400, "invalid_request_error", "Your credit balance is too "
                                                        "low to access the Anthropic API. Please go to Plans & "
                                                        "Billing to upgrade or purchase credits."),
    ("anthropic", "unauthorized"): lambda: anthropic_error(401, "authentication_error", "invalid x-api-key"),
    ("openai", "no_credit"): lambda: openai_error(429, "You exceeded your current quota, please check your plan "
                                                  "and billing details.", type_="insufficient_quota",
                                                  code="insufficient_quota"),
    ("anthropic", "forbidden"): lambda: anthropic_error(403, "permission_error", "Your API key does not have "
                                                        "permission to use the specified resource."),
    ("openai", "unauthorized"): lambda: openai_error(401, "Incorrect API key provided.", code="invalid_api_key"),
    ("openai", "forbidden"): lambda: openai_error(403, "You have insufficient permissions for this operation. "
                                                  "Missing scopes: api.batch.write.", type_="invalid_request_error"),
    ("bedrock", "unauthorized"): lambda: aws_error(403, "UnrecognizedClientException",
                                                   "The security token included in the request is invalid."),
    ("bedrock", "forbidden"): lambda: aws_error(403, "AccessDeniedException", "User: arn:aws:iam::123456789012:user/"
                                                "tierline is not authorized to perform: bedrock:CreateModelInvocation"
                                                "Job because no identity-based policy allows the action"),
    ("gemini", "unauthorized"): lambda: gemini_error(400, "INVALID_ARGUMENT",
                                                     "API key not valid. Please pass a valid API key."),
    ("gemini", "forbidden"): lambda: gemini_error(403, "PERMISSION_DENIED", "Permission denied: Consumer "
                                                  "'api_key:...' has been suspended."),
}


def _create_of(method: str, path: str) -> str | None:
    """The provider whose batch create ``method path`` is, if it is one (a declared lane by its name)."""
    if method != "POST":
        return None
    if path in ("/v1/messages/batches", "/v1/batches", "/model-invocation-job"):
        return {"/v1/messages/batches": "anthropic", "/v1/batches": "openai"}.get(path, "bedrock")
    if path.startswith(GEMINI_PREFIX):
        return "gemini" if path.endswith(":batchGenerateContent") else None
    account, _, rest = path[1:].partition("/")
    return account if rest in ("v1/batches", "openai/batches", "v1/messages/batches") else None


#: The API each built-in provider speaks; a declared lane speaks OpenAI's, the other accounts as configured.
WIRES = {"anthropic": "anthropic", "openai": "openai", "bedrock": "bedrock", "gemini": "gemini"}


class Account:
    """How each provider's account stands: a refusal name, or None (in good standing)."""

    def __init__(self, wires: dict[str, str]) -> None:
        self.refusals: dict[str, str | None] = {}
        self.wires = wires  # each account's API: whose words it refuses in

    @web.middleware
    async def refuse_creates(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        provider = _create_of(request.method, request.path)
        refusal = self.refusals.get(provider) if provider else None
        if provider is not None and refusal is not None:
            return ACCOUNT_REFUSALS[self.wires.get(provider, "openai"), refusal]()
        return await handler(request)

    async def handle(self, request: web.Request) -> web.Response:
        doc = await request.json()
        if (self.wires.get(str(doc.get("provider")), "openai"), doc.get("refusal")) not in ACCOUNT_REFUSALS and \
                doc.get("refusal") is not None:
            return web.json_response({"error": f"unknown provider or refusal: {doc}"}, status=400)
        self.refusals[doc["provider"]] = doc.get("refusal")
        return web.json_response({"refusals": self.refusals})


#: A provider's server failing, in its words: what a read of its batches answers during an outage.
OUTAGE_ANSWERS = {
    "anthropic": lambda: anthropic_error(529, "overloaded_error", "Overloaded"),
    "openai": lambda: openai_error(500, "The server had an error while processing your request. Sorry about "
                                        "that!", type_="server_error"),
    "bedrock": lambda: aws_error(503, "ServiceUnavailableException", "Service Unavailable. Please try again."),
    "gemini": lambda: gemini_error(503, "UNAVAILABLE", "The service is currently unavailable."),
}


def _batch_read_of(method: str, path: str) -> str | None:
    """The provider whose batches ``method path`` reads (a status, a listing, results), if it is one (a declared
    lane by its name)."""
    if method != "GET":
        return None
    if path.startswith("/v1/messages/batches"):
        return "anthropic"
    if path.startswith(("/v1/batches", "/v1/files")):
        return "openai"
    if path.startswith("/model-invocation-job"):
        return "bedrock"
    if path.startswith(GEMINI_PREFIX):
        return "gemini" if "/batches" in path else None
    account, _, rest = path[1:].partition("/")
    return account if rest.startswith(("v1/batches", "openai/batches", "v1/messages/batches")) else None


class Outage:
    """Reads of each provider's batches still to fail."""

    def __init__(self, wires: dict[str, str]) -> None:
        self.reads: dict[str, int] = {}
        self.wires = wires

    @web.middleware
    async def fail_reads(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        provider = _batch_read_of(request.method, request.path)
        if provider is not None and self.reads.get(provider, 0) > 0:
            self.reads[provider] -= 1
            return OUTAGE_ANSWERS[self.wires.get(provider, "openai")]()
        return await handler(request)

    async def handle(self, request: web.Request) -> web.Response:
        doc = await request.json()
        if not isinstance(doc.get("provider"), str) or not isinstance(doc.get("reads"), int):
            return web.json_response({"error": f"expected a provider and a number of reads: {doc}"}, status=400)
        self.reads[doc["provider"]] = doc["reads"]
        return web.json_response({"reads": self.reads})


@web.middleware
async def require_key(request: web.Request, handler):  # type: ignore[no-untyped-def]
    """Answer 401 in each provider's own error shape when no credential is sent."""
    if request.path.startswith(("/model-invocation-job", "/model/")):
        if not request.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256"):
            return aws_error(403, "AccessDeniedException", "Missing Authentication Token: sign the request (SigV4)")
    elif request.path.startswith(GEMINI_PREFIX):  # an upload session's URL is its own credential
        if not request.headers.get("x-goog-api-key") and "upload_id" not in request.query:
            return gemini_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers "
                                "without established identity). Please use API Key or other form of API consumer "
                                "identity to call this API.")
    elif request.path.startswith("/v1/messages") or "/v1/messages/" in request.path:  # another account's too
        if not request.headers.get("x-api-key") and not request.headers.get("authorization"):
            return anthropic_error(401, "authentication_error", "x-api-key header is required")
    elif "/openai/" in request.path:  # an Azure lane
        if not request.headers.get("api-key") or "api-version" not in request.query:
            return openai_error(401, "Access denied due to missing subscription key or api-version.",
                                code="401")
    elif request.path.startswith("/v1/") or "/v1/" in request.path:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return openai_error(401, "You didn't provide an API key.", code="invalid_api_key")
    return await handler(request)


async def _healthy(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def create_app(config: EmulatorConfig) -> web.Application:
    data_dir = config.data_dir or Path(tempfile.mkdtemp(prefix="tierline-emulator-"))
    behaviour = Behaviour(config.error_rate, config.seed)
    recorder = Recorder()
    wires = {**WIRES, **dict.fromkeys(config.anthropic_accounts, "anthropic")}
    account, outage = Account(wires), Outage(wires)
    app = web.Application(middlewares=[recorder.count, require_key, account.refuse_creates, outage.fail_reads],
                          client_max_size=260 * 1024 * 1024)
    openai = OpenAIEmulator(data_dir, behaviour, config.batch_seconds, recorder, config.expires_after_s,
                            config.openai_enqueued_token_limit, config.transient_404_s, config.messy_results)
    anthropic = AnthropicEmulator(behaviour, config.batch_seconds, recorder, config.expires_after_s,
                                  config.anthropic_queue_limit, config.transient_404_s, config.messy_results)
    bedrock = BedrockEmulator(behaviour, config.batch_seconds, recorder, min_records=config.bedrock_min_records,
                              max_jobs=config.bedrock_max_jobs, transient_404_s=config.transient_404_s)
    gemini = GeminiEmulator(data_dir, behaviour, config.batch_seconds, recorder, config.gemini_max_jobs,
                            config.transient_404_s, config.messy_results, config.seed)
    #: Each provider's batches, to lose on ``POST /_emulator/lose``.
    stores: dict[str, dict[str, Any]] = {"openai": openai.batches, "anthropic": anthropic.batches,
                                         "bedrock": bedrock.jobs, "gemini": gemini.jobs}
    app.router.add_routes(openai.routes())
    app.router.add_routes(anthropic.routes())
    app.router.add_routes(bedrock.routes())
    for lane in config.lanes:
        dialect = Dialect(lane.name, lane.purpose, lane.metadata, lane.completion_window, lane.endpoints)
        prefix = f"/{lane.name}/openai" if lane.kind == "azure-openai" else f"/{lane.name}/v1"
        served = OpenAIEmulator(data_dir, behaviour, config.batch_seconds, recorder, config.expires_after_s,
                                transient_404_s=config.transient_404_s, messy=config.messy_results, dialect=dialect)
        stores[lane.name] = served.batches
        app.router.add_routes(served.routes(prefix))
    for name in config.anthropic_accounts:
        other = AnthropicEmulator(behaviour, config.batch_seconds, recorder, config.expires_after_s,
                                  config.anthropic_queue_limit, config.transient_404_s, config.messy_results,
                                  prefix=f"/{name}")
        stores[name] = other.batches
        app.router.add_routes(other.routes())
    app.router.add_routes(gemini.routes())
    pace = Pace(config.first_token_s, config.token_s)
    realtime = RealtimeEmulator(behaviour, pace, RateLimit(config.requests_per_minute),
                                Flex(config.flex_latency_s, config.flex_unavailable_rate))
    app.router.add_routes(realtime.routes())
    for lane in config.lanes:
        azure = lane.kind == "azure-openai"
        app.router.add_routes(realtime.openai_routes(f"/{lane.name}/openai/deployments/{{deployment}}" if azure
                                                     else f"/{lane.name}/v1"))
    app.router.add_routes(BedrockRuntimeEmulator(behaviour, RateLimit(config.requests_per_minute)).routes())
    app.router.add_get("/_emulator/batches", recorder.handle)
    app.router.add_get("/_emulator/requests", recorder.handle_requests)
    app.router.add_post("/_emulator/account", account.handle)
    app.router.add_post("/_emulator/outage", outage.handle)

    async def lose(request: web.Request) -> web.Response:
        """Every batch of ``{"provider": NAME}`` forgotten, as one deleted in the console or lost by the provider:
        404 from now on."""
        store = stores.get((await request.json()).get("provider"))
        if store is None:
            return web.json_response({"error": "no such provider"}, status=400)
        lost = len(store)
        store.clear()
        return web.json_response({"lost": lost})

    app.router.add_post("/_emulator/lose", lose)

    async def hold(request: web.Request) -> web.Response:
        """``{"hold": true}``: OpenAI's batches in progress stay so (a stalled batch) until ``{"hold": false}``."""
        openai.held = bool((await request.json()).get("hold"))
        return web.json_response({"held": openai.held})

    app.router.add_post("/_emulator/hold", hold)

    # Webhooks: OpenAI's to the project's endpoint, Gemini's to each job's webhookConfig (emulator.webhooks).
    notifier = openai.notifier = gemini.notifier = Notifier()
    app.router.add_post("/_emulator/webhooks", notifier.configure)

    def announce() -> None:
        openai.announce_ended()
        gemini.announce_ended()

    async def ticking(app: web.Application) -> AsyncIterator[None]:
        ticker = asyncio.get_running_loop().create_task(notifier.tick(announce))
        yield
        ticker.cancel()
        await notifier.close()

    app.cleanup_ctx.append(ticking)
    app.router.add_get("/_emulator/health", _healthy)
    return app


async def serve(config: EmulatorConfig, host: str = "127.0.0.1", port: int = 8800) -> None:
    """Run until cancelled."""
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
