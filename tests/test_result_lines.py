"""Result files arrive in chunks that split lines anywhere; every line must come out whole, once."""

from typing import AsyncIterator

import orjson

from providers.base import split_lines


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def _lines(data: bytes, size: int) -> list[bytes]:
    return [line async for line in split_lines(_chunks(data, size))]


async def test_lines_split_across_chunks_come_out_whole() -> None:
    lines = [orjson.dumps({"custom_id": f"item-{i}", "text": "x" * (i * 7 % 50)}) for i in range(200)]
    data = b"\n".join(lines) + b"\n"
    for size in (1, 7, 64, 4096, len(data)):
        assert await _lines(data, size) == lines, size


async def test_blank_lines_are_skipped_and_a_last_line_without_newline_is_kept() -> None:
    assert await _lines(b'{"a":1}\n\n  \n{"b":2}', 3) == [b'{"a":1}', b'{"b":2}']
    assert await _lines(b"", 3) == []
