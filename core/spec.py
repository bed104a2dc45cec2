"""What tierline needs to know of a provider: one ``ProviderSpec`` each, asked instead of its name; pure.

Each provider's package (``providers/<name>/``) makes its spec from the settings; the catalogue of them
(``providers.catalogue``) is built once, when the settings are, and passed to what needs it. Code outside
``providers/`` asks a spec (``spec.wire.line(item)``, ``spec.flex_models``), never compares a provider's
name: a new provider is a new package, found by nothing else having to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, NamedTuple, Protocol

from core.deadlines import ProviderWindows
from core.flex import offers_flex
from core.limits import BatchGroup, Caps, ProviderLimits

if TYPE_CHECKING:
    from core.validation import Rejected
    from core.answers import Reading
    from providers.base import BatchProvider, ResultFormat
    from providers.sync_api import Answer

__all__ = ["Catalogue", "Item", "Pricing", "ProviderSpec", "Realtime", "SyncClient", "Upstream", "UnknownProvider",
           "Wire"]


class Item(Protocol):
    """A request as each tier carries it (a work item, a retry, an async call)."""

    @property
    def custom_id(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def endpoint(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def invocation(self) -> str | None: ...


class Upstream(NamedTuple):
    """Where a synchronous call goes, and the headers it carries (its credential among them)."""

    url: str
    headers: dict[str, str]


class Wire(Protocol):
    """How a provider's requests read: the fields an item needs beside its body, its line in a batch's input,
    the batch it may share, and how one is sent on its own (the async and flex tiers, the fallback)."""

    #: What ``fields`` requires, as JSON Schema (the published schema of ``tierline.requests`` says it).
    schema: dict[str, Any]
    #: How a line of the batch's results is read back: the item's id, and its outcome.
    results: ResultFormat

    def fields(self, doc: dict[str, Any], params: dict[str, Any]) -> dict[str, Any] | Rejected:
        """The item's own fields beside ``params`` (a model, an invocation), checked; or why not."""

    def problem(self, endpoint: str | None, fields: dict[str, Any], params: dict[str, Any]) -> str | None:
        """What is wrong with ``params`` for the provider's request type, naming the field; None if nothing."""

    def line(self, item: Item) -> bytes:
        """The item as one line of the batch input (without the newline)."""

    def group(self, item: Item) -> BatchGroup:
        """The items it may share a batch with."""

    def job_fields(self, group: BatchGroup) -> dict[str, Any]:
        """What its batch's job holds for it that its line does not (a retry carries it)."""

    def sync_path(self, item: Item) -> str:
        """The path of its synchronous call."""

    def sync_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Its body as the synchronous API takes it."""

    def answer_schema(self, item: Item) -> dict[str, Any] | None:
        """The JSON Schema the request asks its answer to fit (a response format, a forced tool's input), if any."""

    def reading(self, response: dict[str, Any]) -> Reading | None:
        """A successful response's answer, for ``core.answers.judge``; None for one that is no text (a vector)."""

    def model(self, item: Item) -> str:
        """The model it names (and is billed as, but for an answer naming another)."""


class SyncClient(Protocol):
    """A provider's synchronous API where it is no plain HTTPS call tierline makes itself (Bedrock's, signed by
    boto3)."""

    async def send(self, item: Item) -> Answer:
        """The call's answer; no answer at all is status 599."""

    def close(self) -> None: ...


class Realtime(Protocol):
    """The provider's dialect where tierline stands in for it (``/realtime/<name>/...``)."""

    paths: tuple[str, ...]  # the provider's own paths served

    def error(self, status: int, message: str, kind: str = "") -> bytes:
        """An error body as the provider writes it, so the client's SDK reads it."""

    def unauthorized(self) -> bytes:
        """The body of a 401 for a key the worker does not know."""

    def whole(self, streamed: bytes) -> dict[str, Any] | None:
        """A streamed answer put together, as the call would have answered unstreamed (None: it never began)."""

    def with_usage(self, path: str, body: bytes, doc: dict[str, Any]) -> bytes:
        """The request, asking for its usage when streamed if the provider reports it only when asked."""


@dataclass(frozen=True, slots=True)
class Pricing:
    """Whose price table a provider's models are in, and under which name."""

    table: str  # the section of the price file (and of tierline's own prices)
    maintained: str | None = None  # the name genai-prices gives the provider, if it lists it
    model_of: Callable[[str], str] = str  # a model id → the name the table lists it by


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """Everything tierline needs to know of one provider."""

    name: str
    limits: ProviderLimits
    windows: ProviderWindows
    wire: Wire
    pricing: Pricing
    #: The adapter of its batch API (made when first used: each SDK costs a worker memory and a second to import).
    batches: Callable[[], BatchProvider]
    #: Where its synchronous ``path`` is, with the headers (the client's ``incoming`` ones passed on where
    #: they matter) and its credential; ``model``: an Azure deployment's.
    upstream: Callable[[str, Mapping[str, str], str], Upstream] | None = None
    #: Its synchronous API, when it is no plain HTTPS call: made on first use, for so many calls at once.
    sync_client: Callable[[int], SyncClient] | None = None
    #: What to set for its credential, or None when the worker holds it (asked once, at start); not asked
    #: (None) of a provider this deployment has not set up.
    credential_missing: Callable[[], str | None] | None = None
    #: The model billed is the batch job's, not the one an answer names (the vendor's name for it).
    bills_job_model: bool = False
    #: Models (or their dated snapshots) that may be called with ``service_tier: "flex"``.
    flex_models: tuple[str, ...] = ()
    #: Fewer items than the provider's minimum are called one by one in the async tier, not failed.
    calls_below_minimum: bool = False
    #: The setting that gives the account's minimum items per batch, where the provider has one.
    min_items_setting: str = "tierline's minimum for it"
    #: The tierline endpoint in its dialect, if there is one.
    realtime: Realtime | None = None
    #: Failure modes it cannot have, each with the reason (keys: the modes of the provider × failure matrix,
    #: ``tests/test_provider_matrix.py``, which shows them so rather than play them).
    cannot: Mapping[str, str] = field(default_factory=dict)

    def offers_flex(self, model: str) -> bool:
        """Whether ``model`` (a name, or a dated snapshot of it) may be called at flex prices."""
        return offers_flex(model, self.flex_models)


class UnknownProvider(KeyError):
    """A provider name the catalogue does not hold."""

    def __str__(self) -> str:
        return str(self.args[0])


class Catalogue(Mapping[str, ProviderSpec]):
    """The providers this deployment knows, by name: built once from the settings, then only read.

    ``max_items`` and ``max_bytes`` are the deployment's own caps on a batch (0: the provider's): each provider's
    batches close at the lower of them and its limits (``caps``).
    """

    def __init__(self, specs: list[ProviderSpec], max_items: int = 0, max_bytes: int = 0) -> None:
        self._specs = {spec.name: spec for spec in specs}
        self._caps = {spec.name: Caps.within(spec.limits, max_items, max_bytes) for spec in specs}

    def caps(self, name: str) -> Caps:
        """The caps ``name``'s batches close at, and the fewest items one may be submitted with."""
        return self._caps[self[name].name]  # an unknown name is said as for its spec

    def __getitem__(self, name: str) -> ProviderSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownProvider(f"provider {name!r} is not one of: {', '.join(sorted(self._specs))}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def pricing(self) -> dict[str, Pricing]:
        """How each provider's models are priced (``core.cost.PriceTable``)."""
        return {name: spec.pricing for name, spec in self._specs.items()}

    def realtime_routes(self) -> dict[str, tuple[ProviderSpec, str]]:
        """Worker path → the provider and its own path, for each provider tierline stands in for."""
        return {f"/realtime/{spec.name}{path}": (spec, path) for spec in self.values() if spec.realtime
                for path in spec.realtime.paths}
