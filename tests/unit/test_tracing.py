"""emulator.service.tracing: the trace header of an invocation, from the caller's or new."""

from __future__ import annotations

import pytest

from emulator.service.tracing import RANDOM_BITS, trace_header

BITS = (0xABCDEF0123456789 << 96) | 0x0123456789ABCDEF01234567  # parent bits, then root bits


def test_a_new_header_has_the_time_and_the_random_bits_in_xrays_format() -> None:
    assert RANDOM_BITS == 160
    assert trace_header(None, 1_700_000_000.9, BITS) == (
        "Root=1-6553f100-0123456789abcdef01234567;Parent=abcdef0123456789;Sampled=0")


@pytest.mark.parametrize(("incoming", "expected"), [
    ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
     "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
    ("root=1-5759E988-BD862E3FE1BE46A994272793; sampled=1; Lineage=a:1",
     "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=abcdef0123456789;Sampled=1"),
    ("Parent=53995c3f42cd8ad8", "Root=1-6553f100-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=0"),
    ('Root=1-"x";Parent=zz;Sampled=yes', "Root=1-6553f100-0123456789abcdef01234567;Parent=abcdef0123456789;Sampled=0"),
    ("", "Root=1-6553f100-0123456789abcdef01234567;Parent=abcdef0123456789;Sampled=0"),
])
def test_what_the_caller_sends_is_kept_where_valid(incoming: str, expected: str) -> None:
    assert trace_header(incoming, 1_700_000_000, BITS) == expected


def test_a_huge_header_is_cut_before_it_is_read() -> None:
    header = "Sampled=1;" + "x" * 100_000 + ";Root=1-5759e988-bd862e3fe1be46a994272793"
    assert trace_header(header, 1_700_000_000, BITS).startswith("Root=1-6553f100-")  # the Root was past the cut
