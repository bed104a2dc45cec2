from core.offsets import PendingOffsets


def test_commit_stops_at_the_oldest_item_not_yet_in_an_accepted_batch() -> None:
    offsets = PendingOffsets()
    for o in range(5):
        offsets.consumed("p0", o)
    offsets.hold("p0", 1)
    offsets.hold("p0", 3)
    assert offsets.committable() == {"p0": 1}
    offsets.release("p0", 1)
    assert offsets.committable() == {"p0": 3}
    offsets.release("p0", 3)
    assert offsets.committable() == {"p0": 5}


def test_partitions_are_independent_and_forgotten_on_revoke() -> None:
    offsets = PendingOffsets()
    offsets.consumed("p0", 9)
    offsets.consumed("p1", 4)
    offsets.hold("p1", 4)
    assert offsets.committable() == {"p0": 10, "p1": 4}
    offsets.forget("p1")
    assert offsets.committable() == {"p0": 10}
