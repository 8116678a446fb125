"""The group bench spreads its events over one correlation domain per member; the domains
must land on different members' partitions, or one member would do all the work."""

from __future__ import annotations

from datetime import timedelta

import pytest
from kafka.partitioner.default import DefaultPartitioner

from triage.evaluation.bench import domains_for_members, synthetic_events
from triage.domain.scope import scope_for


class _Cluster:
    """What the client's partitioner asks of its cluster metadata: one topic."""

    def __init__(self, partitions: int) -> None:
        self.partitions = set(range(partitions))

    def topics(self) -> set[str]:
        return {"logs"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions

    available_partitions_for_topic = partitions_for_topic


def partition_of(domain: str, partitions: int) -> int:
    """Where kafka-python's producer sends a message keyed by the domain's scope."""
    key = scope_for(domain).encode()
    partition: int = DefaultPartitioner().partition("logs", None, key, None, None, _Cluster(partitions))
    return partition


@pytest.mark.parametrize(("members", "partitions", "expected"), [
    (1, 4, [0]), (2, 4, [0, 2]), (3, 4, [0, 1, 2]), (4, 4, [0, 1, 2, 3]), (2, 8, [0, 4]),
])
def test_each_domain_is_keyed_to_the_first_partition_of_its_members_range(
        members: int, partitions: int, expected: list[int]) -> None:
    domains = domains_for_members(members, partitions)
    assert len(set(domains)) == members
    assert [partition_of(d, partitions) for d in domains] == expected


def test_more_members_than_partitions_is_refused() -> None:
    with pytest.raises(ValueError, match="5 members over 4 partitions"):
        domains_for_members(5, 4)


def test_synthetic_events_take_turns_over_the_domains_and_are_keyed_by_them() -> None:
    events = list(synthetic_events(6, 0.5, start=None, spacing=timedelta(0),
                                   domains=["a", "b"]))
    assert [key for _, key, _ in events] == [scope_for("a"), scope_for("b")] * 3
    assert b'"triage.domain": "a"' in events[0][2] and b'"triage.domain": "b"' in events[1][2]
