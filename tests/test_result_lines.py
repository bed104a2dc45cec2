"""Result files arrive in chunks that split lines anywhere; every line must come out whole, once. A line's
item id, where it is read from the line's bytes without parsing, is the one parsing gives, whatever the line."""

import json
from typing import Any, AsyncIterator

import orjson
from hypothesis import given, settings, strategies as st

from providers.base import split_lines
from providers.openai.wire import RESULTS as OPENAI_RESULTS
from streams.state.spool import part_of, result_part


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def _lines(data: bytes, size: int) -> list[bytes]:
    return [line async for run in split_lines(_chunks(data, size)) for line in run]


async def test_lines_split_across_chunks_come_out_whole() -> None:
    lines = [orjson.dumps({"custom_id": f"item-{i}", "text": "x" * (i * 7 % 50)}) for i in range(200)]
    data = b"\n".join(lines) + b"\n"
    for size in (1, 7, 64, 4096, len(data)):
        assert await _lines(data, size) == lines, size


async def test_blank_lines_are_skipped_and_a_last_line_without_newline_is_kept() -> None:
    assert await _lines(b'{"a":1}\n\n  \n{"b":2}', 3) == [b'{"a":1}', b'{"b":2}']
    assert await _lines(b"", 3) == []


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["custom_id", "id", "x"]) | st.text(max_size=4), inner, max_size=3),
                    max_leaves=6)
KEYS = st.sampled_from(["custom_id", "id", "response", "error", "custom\\u005fid", "custom_i"]) | st.text(max_size=6)
IDS = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20) | st.sampled_from(["req-1", 'a"b', "\\"])


@st.composite
def result_lines(draw: Any) -> bytes:
    """A JSON object written by hand: keys in any order, repeated, nested, escaped; values of every kind."""
    members = draw(st.lists(st.tuples(KEYS, IDS | JSON), max_size=4))
    members.insert(draw(st.integers(0, len(members))), ("custom_id", draw(IDS | JSON)))
    ascii_only, space = draw(st.booleans()), draw(st.sampled_from(["", " ", "\t "]))

    def text(value: Any) -> str:
        if isinstance(value, str) and "\\u" in value and value.startswith("custom"):
            return f'"{value}"'  # a key spelled with an escape: "custom\u005fid" is custom_id to a parser
        return json.dumps(value, ensure_ascii=ascii_only)

    inner = f",{space}".join(f"{text(key)}:{space}{text(value)}" for key, value in members)
    return f"{space}{{{space}{inner}{space}}}".encode()


@settings(max_examples=2000, deadline=None)
@given(line=result_lines(), parts=st.integers(2, 7))
def test_an_id_read_from_a_result_lines_bytes_is_the_one_parsing_gives(line: bytes, parts: int) -> None:
    result_format = OPENAI_RESULTS
    outcome = result_format.outcome(line)
    read = result_format.leading_id(line)
    if isinstance(outcome, str):  # no result: it may go to any part, and is left out as it is read back
        return
    if read is not None:
        assert read.decode() == outcome.custom_id
    assert result_part(line, parts, result_format) == part_of(outcome.custom_id, parts)


def test_the_providers_own_lines_are_read_without_parsing() -> None:
    openai = OPENAI_RESULTS
    line = b'{"id": "batch_req_1", "custom_id": "request-2", "response": {"status_code": 200}, "error": null}'
    assert openai.leading_id(line) == b"request-2"
    anthropic = b'{"custom_id":"my-second-request","result":{"type":"succeeded","message":{}}}'
    assert openai.leading_id(anthropic) == b"my-second-request"
    assert openai.leading_id(b'{"error": {"x": 1}, "custom_id": "late"}') is None  # an object before it: parsed
    assert openai.leading_id(b'{"custom_id": "a\\u00e9"}') is None  # an escape: parsed
