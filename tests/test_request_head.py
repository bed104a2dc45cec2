"""A request's head (custom_id, re-run name) read without the rest names the run a whole parse names.

The replay and the windowing agent skip a done run's records on the head alone; a head that says
nothing sends the record to the whole parse. So: whenever the head names a run, a whole parse of valid
JSON names the same one; and the head says nothing only where a whole parse finds no run either, or the
value nests deeper than the decoder goes.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from core.request_head import RequestHead, head_in, head_of
from schemas import RunKey
from streams.cli.replay import Replayed, _again
from streams.settings import Settings
from streams.local.workload import make_items
from streams.state.ledger import Ledger
from tests.support import dumps, with_deep

SETTINGS = Settings.from_env({"TIERLINE_TOPIC_PREFIX": "h."})
TOPIC = SETTINGS.topics.requests

names = st.none() | st.just("") | st.text(max_size=6) | st.integers() | st.lists(st.text(max_size=3), max_size=2)
anything = st.recursive(st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
                        | st.floats(allow_nan=False) | st.text(),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                                    max_size=3), max_leaves=12)


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A request-like object: custom_id and reprocess of any type or absent, a custom_id nested in its params,
    other fields of any shape; and whether a field is written twice (the last one counts, as for orjson)."""
    doc: dict[str, Any] = draw(st.dictionaries(st.sampled_from(["provider", "params", "metadata", "x"]), anything,
                                               max_size=3))
    for field in ("custom_id", "reprocess"):
        if draw(st.booleans()):
            doc[field] = draw(names)
    if draw(st.booleans()):
        doc["params"] = {"custom_id": draw(names), "messages": [{"custom_id": draw(names)}]}
    text = dumps(doc)
    if not doc or draw(st.booleans()):
        return text, False
    field = draw(st.sampled_from(["custom_id", "reprocess"]))  # once more, first
    return b"{" + dumps(field) + b":" + dumps(draw(names)) + b"," + text[1:], True


def run_of_doc(value: bytes) -> tuple[str, str | None] | None:
    """The run a whole parse reads in ``value``, as the windowing agent reads it where the head said nothing."""
    try:
        head = head_in(orjson.loads(value))
    except orjson.JSONDecodeError:
        return None
    return None if head is None else (head.custom_id, head.reprocess)


@settings(max_examples=500, deadline=None)
@given(case=requests() | (anything.map(dumps) | st.binary(max_size=40)).map(lambda value: (value, False)))
def test_the_head_names_the_run_a_whole_parse_names_or_says_nothing(case: tuple[bytes, bool]) -> None:
    value, repeated = case
    head = head_of(value)
    whole = run_of_doc(value)
    if head is None:  # a field written twice, the first time of a type the head cannot hold, hides the run
        assert whole is None or repeated
        return
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError:
        return  # not JSON by orjson's reading: see below
    assert (head.custom_id, head.reprocess) == whole


def test_the_head_of_a_plain_request_is_read() -> None:
    for item in make_items(6, "head", providers=("anthropic", "openai")):
        assert head_of(orjson.dumps(item)) == RequestHead(item["custom_id"], None)
    assert head_of(dumps({"custom_id": "a", "reprocess": "again"})) == RequestHead("a", "again")


def test_a_custom_id_nested_in_the_params_is_not_the_requests() -> None:
    value = dumps({"params": {"custom_id": "done"}, "custom_id": "fresh", "metadata": {"custom_id": "done"}})
    assert head_of(value) == RequestHead("fresh", None)


def test_the_head_is_read_past_what_only_a_whole_parse_rejects() -> None:
    """Said in core.request_head: the UTF-8 of strings stepped over and the range of numbers are not checked.
    The callers only skip on a head, which they did for a done run's record before any other check."""
    assert head_of(b'{"custom_id":"a","params":"\xff"}') == RequestHead("a", None)
    assert head_of(b'{"custom_id":"a","params":1e999}') == RequestHead("a", None)
    assert head_of(b'{"custom_id":"a","params":[1,}') is None  # the syntax is checked throughout
    assert head_of(b'{"custom_id":"a"} trailing') is None


def test_a_value_nested_deeper_than_the_decoder_goes_says_nothing() -> None:
    """A whole parse decides it, as for any head that says nothing."""
    value = with_deep({"custom_id": "a"}, "metadata", 1000)
    assert head_of(value) is None and run_of_doc(value) == ("a", None)


def record(offset: int, value: bytes | None) -> ConsumerRecord:
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, None, value, None, 0, len(value or b""), ())


def replayed(values: list[bytes | None], done: list[RunKey], reprocess: str | None = None,
             custom_ids: frozenset[str] = frozenset()) -> tuple[list[bytes], Replayed]:
    """What ``tierline replay`` would publish again of these records, with ``done`` in the ledger."""
    ledger = Ledger(SETTINGS.kafka, SETTINGS.topics.ledger)
    ledger.record("earlier", 0, "batch", done)
    counts = Replayed()
    sent = [m.value for m in _again([record(n, v) for n, v in enumerate(values)], TOPIC, reprocess, custom_ids,
                                    ledger, counts, {})]
    return [v if isinstance(v, bytes) else orjson.dumps(v) for v in sent], counts


def test_a_replay_leaves_out_what_succeeded_and_publishes_the_rest_byte_for_byte() -> None:
    fresh = b'{"custom_id": "fresh",  "params": {"custom_id": "done"}}'  # spaced as its producer wrote it
    deep = with_deep({"custom_id": "done"}, "metadata", 1000)
    values: list[bytes | None] = [dumps({"custom_id": "done"}), fresh, b"not json", None, deep,
                                  dumps({"custom_id": "done", "reprocess": "again"})]
    sent, counts = replayed(values, ["done"])
    assert sent == [fresh, values[-1]]
    assert (counts.succeeded, counts.not_work_items) == (2, 2)


def test_a_named_replay_leaves_out_only_what_succeeded_under_that_name() -> None:
    values = [dumps({"custom_id": "a"}), dumps({"custom_id": "b"}), dumps({"custom_id": "c"})]
    sent, counts = replayed(values, ["a", "b", ("b", "rerun")], reprocess="rerun", custom_ids=frozenset({"a", "b"}))
    assert [orjson.loads(v) for v in sent] == [{"custom_id": "a", "reprocess": "rerun"}]
    assert counts.succeeded == 1
