"""A replica with a stable name (TIERLINE_INSTANCE_ID: static group membership) killed and started again
takes its place back: every partition in its first assignment, and it is not fenced off as a second
member of the same name. How much sooner than a dynamic member it is ready is measured by
``bench/restart.py`` (timings are benchmarks here, not assertions)."""

from __future__ import annotations

import pytest

from tests.support import Workers, wait_for_log

pytestmark = pytest.mark.integration


def test_a_restarted_replica_takes_all_its_partitions_back_in_its_first_assignment(workers: Workers) -> None:
    env = workers.env(TIERLINE_INSTANCE_ID="replica-1", TIERLINE_SESSION_TIMEOUT_S="30")
    first = workers.start(env)
    assert wait_for_log(first, "partitions_assigned")[0]["partitions"] == [0, 1, 2, 3]
    workers.kill(first)  # no leave: the group still counts it as a member for 30 s
    second = workers.start(env)
    [assigned, *_] = wait_for_log(second, "partitions_assigned", timeout=90)
    assert assigned["partitions"] == [0, 1, 2, 3]
    assert second.poll() is None and "Fenced" not in second.log.read_text()  # type: ignore[attr-defined]
