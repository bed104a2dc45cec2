"""Home partitions and forwarded records (``streams.kafka.homes``), without a broker."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from streams.kafka.homes import FROM_HEADER, first_read, forward, home_of
from streams.kafka.partitioner import partition_of


def record(partition: int, offset: int, headers: tuple[tuple[str, bytes], ...] = ()) -> ConsumerRecord:
    return ConsumerRecord(topic="requests", partition=partition, offset=offset, timestamp=1_700_000_000_123,
                          timestamp_type=0, key=None, value=b'{"custom_id": "a"}', checksum=None,
                          serialized_key_size=0, serialized_value_size=18, headers=headers)


def test_a_custom_ids_home_is_where_kafkas_default_partitioner_puts_it_keyed() -> None:
    assert [home_of(f"c-{n}", 12) for n in range(50)] == [partition_of(f"c-{n}".encode(), 12) for n in range(50)]


def test_a_forwarded_record_keeps_its_value_headers_and_time_and_names_where_it_was_first_read() -> None:
    copy = forward(record(1, 42, (("trace", b"x"),)), "a", 3)
    assert (copy.topic, copy.key, copy.partition, copy.timestamp_ms) == ("requests", "a", 3, 1_700_000_000_123)
    assert copy.value == b'{"custom_id": "a"}'
    assert copy.headers == (("trace", b"x"), (FROM_HEADER, b"1:42:1700000000123"))


def test_a_copy_forwarded_again_still_names_the_first_record() -> None:
    first = forward(record(1, 42), "a", 3)
    again = forward(record(3, 7, first.headers), "a", 0)
    assert again.headers == first.headers
    assert first_read(record(0, 9, again.headers)) == (1, 42, 1_700_000_000_123)


def test_a_header_of_that_name_that_is_not_tierlines_is_read_as_a_record_of_its_own() -> None:
    for garbled in (b"", b"1:2", b"a:b:c", b"1:2:3:4", None):
        assert first_read(record(0, 9, ((FROM_HEADER, garbled),))) is None
        copy = forward(record(0, 9, ((FROM_HEADER, garbled),)), "a", 3)
        assert first_read(record(3, 0, copy.headers)) == (0, 9, 1_700_000_000_123)
    assert first_read(record(0, 9)) is None
