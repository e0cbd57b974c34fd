"""Chain IDs as the OCI image spec defines them, checked against hashlib by hand."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from forklift.oci.digest import Digest
from forklift.runtime.snapshots import chain_id, chain_ids, next_chain_id

A = Digest("sha256", "a" * 64)
B = Digest("sha256", "b" * 64)
C = Digest("sha256", "c" * 64)


def test_chain_of_one_layer_is_its_diff_id() -> None:
    assert chain_id([A]) == A


def test_chain_of_three_layers_by_hand() -> None:
    ab = hashlib.sha256(f"sha256:{'a' * 64} sha256:{'b' * 64}".encode()).hexdigest()
    abc = hashlib.sha256(f"sha256:{ab} sha256:{'c' * 64}".encode()).hexdigest()
    assert chain_ids([A, B, C]) == [A, Digest("sha256", ab), Digest("sha256", abc)]
    assert chain_id([A, B, C]) == Digest("sha256", abc)


def test_no_layers_has_no_chain() -> None:
    assert chain_id([]) is None
    assert chain_ids([]) == []


def test_order_matters() -> None:
    assert chain_id([A, B]) != chain_id([B, A])


digests = st.binary(min_size=0, max_size=8).map(Digest.of)


@given(st.lists(digests, max_size=6), st.lists(digests, max_size=6))
def test_prefixes_are_stable_and_fold(first: list[Digest], second: list[Digest]) -> None:
    whole = chain_ids(first + second)
    assert whole[: len(first)] == chain_ids(first)
    folded = None
    for d in first + second:
        folded = next_chain_id(folded, d)
    assert folded == (whole[-1] if whole else None)
