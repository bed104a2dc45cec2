"""Records go to the partition Kafka's own clients would choose for their key."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given, strategies as st

from streams.kafka.partitioner import partition_of

aiokafkas = DefaultPartitioner()


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
def test_a_key_goes_where_aiokafka_puts_it(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert partition_of(key, count) == aiokafkas(key, partitions, partitions)


def test_custom_ids_spread_over_the_partitions_as_kafka_places_them() -> None:
    keys = [f"item-{n}".encode() for n in range(2_000)]
    placed = [partition_of(key, 4) for key in keys]
    assert placed == [aiokafkas(key, [0, 1, 2, 3], [0, 1, 2, 3]) for key in keys]
    assert {placed.count(p) for p in range(4)} <= set(range(400, 600))  # spread, not piled on one
