import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.lexorank import between, is_rank, spread

# Ranks in the module's own spelling, including long tails and the extremes.
ranks = st.builds(
    lambda head, tail: f"0|{head}:{tail}",
    st.text("0123456789abcdefghijklmnopqrstuvwxyz", min_size=6, max_size=6),
    st.text("0123456789abcdefghijklmnopqrstuvwxyz", max_size=8).map(lambda t: t.rstrip("0")),
).filter(is_rank)


@given(ranks, ranks)
def test_between_two_ranks_is_strictly_between(a, b):
    if a == b:
        with pytest.raises(ValueError):
            between(a, b)
        return
    low, high = sorted([a, b])
    middle = between(low, high)
    assert low < middle < high
    assert is_rank(middle)


@given(ranks)
def test_between_open_ends_is_strictly_outside(rank):
    first = between(None, rank)
    last = between(rank, None)
    assert first < rank < last
    assert is_rank(first) and is_rank(last)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("0|i00000:", "0|i00000:"),
        ("0|i00001:", "0|i00000:"),
        ("0|i00000:", "1|i00001:"),
        ("0|i00000:0", None),  # a second spelling of 0|i00000:
        (None, "0|000000:"),  # zero: nothing fits before it
        ("0|I00000:", None),
        ("0|i0000:", None),
        ("hzzzzz", None),
        (None, ""),
    ],
)
def test_between_rejects_bad_input(before, after):
    with pytest.raises(ValueError):
        between(before, after)


def test_between_open_both_ends_is_the_middle():
    assert between(None, None) == "0|i00000:"


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("0|i00000:", "0|i00001:", "0|i00000:i"),  # adjacent at six digits: one digit longer
        ("0|zzzzzz:", None, "0|zzzzzz:i"),  # the very end still has room
        (None, "0|000001:", "0|000000:i"),  # and so has the very start
        ("1|i00000:", "1|i00002:", "1|i00001:"),  # the bucket is kept
    ],
)
def test_between_known_values(before, after, expected):
    assert between(before, after) == expected


@pytest.mark.parametrize("spot", ["after_first", "before_last"])
def test_repeated_insertion_at_the_same_spot_keeps_order(spot):
    board = spread(2)
    for _ in range(1000):
        if spot == "after_first":
            board.insert(1, between(board[0], board[1]))
        else:
            board.insert(len(board) - 1, between(board[-2], board[-1]))
    assert board == sorted(board)
    assert len(set(board)) == len(board)


@pytest.mark.parametrize("end", ["top", "bottom"])
def test_repeated_moves_to_an_open_end_keep_order_and_stay_short(end):
    board = spread(3)
    for _ in range(1000):
        if end == "top":
            board.insert(0, between(None, board[0]))
        else:
            board.append(between(board[-1], None))
    assert board == sorted(board)
    assert max(len(rank) for rank in board) == len("0|i00000:")


@given(st.integers(min_value=0, max_value=3000))
def test_spread_is_increasing_with_room_between(n):
    board = spread(n)
    assert len(board) == n
    assert all(is_rank(rank) for rank in board)
    assert board == sorted(set(board))
    for low, high in itertools.pairwise(board):
        assert low < between(low, high) < high


def test_spread_of_many_lengthens_instead_of_colliding():
    board = spread(36**4)
    assert board == sorted(set(board))
    assert len(board[0]) > len("0|i00000:")


def test_spread_rejects_negative():
    with pytest.raises(ValueError):
        spread(-1)
