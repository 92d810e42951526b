"""The streaming Merkle frontier gives exactly the root of the whole-list computation."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.hashchain import MerkleFrontier, merkle_root


def _hashes(n: int) -> list[str]:
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=300))
def test_frontier_root_equals_merkle_root_at_every_size(n: int) -> None:
    frontier = MerkleFrontier()
    for h in _hashes(n):
        frontier.add(h)
    assert frontier.size == n
    assert frontier.root() == merkle_root(_hashes(n))


def test_frontier_holds_only_log2_subtrees() -> None:
    frontier = MerkleFrontier()
    for h in _hashes(1000):
        frontier.add(h)
    assert len(frontier._stack) == bin(1000).count("1")  # one perfect subtree per set bit


def test_root_can_be_read_mid_stream_and_the_stream_goes_on() -> None:
    frontier = MerkleFrontier()
    hashes = _hashes(37)
    for i, h in enumerate(hashes, start=1):
        frontier.add(h)
        assert frontier.root() == merkle_root(hashes[:i])
