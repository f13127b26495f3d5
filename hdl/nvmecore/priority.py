"""Priority encoders for the arbiters [NVMe 1.4 §4.11 (the SQ arbiter's round robin)] and
for the per-vector choices (the MSI-X message to send, the interrupt vector to flush):
the lowest set bit of a vector, and the lowest set bit above a moving ``last`` with
wrap-around (round robin).

Above :data:`FLAT_MAX` bits both are binary trees over the bits, built once: a node of
2**k bits holds whether any of its bits is set and the index of its lowest one, from its
two halves with one multiplexer per index bit. The cost grows with the number of bits
(about two gates per bit per index bit at most), not with its square as the flat "set,
and none below" form does, and the depth with its logarithm.

Round robin needs no comparison of each index with ``last``. A node of 2**k bits whose
range holds ``last`` (the root always does) has its answer "the lowest set bit above
``last``" in its upper half when bit k−1 of ``last`` is 1 (``last`` is in that half, so
the question goes there), and otherwise in its lower half if the lower half has one, or
else it is the upper half's lowest set bit. Halves that are constant zero (the padding of
a vector that is not a power of two long) fold away.
"""

from amaranth import Cat, Const, Mux, Signal

__all__ = ["lowest_set", "round_robin", "FLAT_MAX"]

#: Up to this many bits, the flat form (one "set, and none below" term per bit, each
#: index bit an OR of them): its cost grows with the square of the width but it is a LUT
#: level shallower than the tree at the widths of the default builds (17 SQs: 9 LUT
#: levels in the SQ arbiter against 10). Above it, the tree.
FLAT_MAX = 32


class _Node:
    """A subtree: ``any`` (a bit set), ``first`` (its lowest, ``k`` bits), and for round
    robin ``after_any`` / ``after`` (the lowest above ``last`` within the node;
    ``after_any`` None where it is constant 0, as in a single bit)."""
    __slots__ = ("any", "first", "after_any", "after")

    def __init__(self, any_, first, after_any=None, after=None):
        self.any, self.first, self.after_any, self.after = any_, first, after_any, after


def _mux(sel, one, zero):
    """``Mux(sel, one, zero)`` for single bits, None standing for a constant 0."""
    if one is None and zero is None:
        return None
    if one is None:
        return ~sel & zero
    if zero is None:
        return sel & one
    return Mux(sel, one, zero)


def _or(a, b):
    return b if a is None else a if b is None else a | b


def _bit(value):
    return Const(0, 1) if value is None else value


def _build(m, bits, last, name):
    """The root of the tree over ``bits`` (None when it is constant zero) and its
    levels; with ``last`` (a value), the round-robin fields as well. Each node's fields
    are signals (``{name}_{k}_{i}_*``), so that each is built once however often used."""
    empty = Const(0, 0)
    level = [None if isinstance(b, Const) and b.value == 0 else _Node(b, empty, None, empty)
             for b in bits]
    k = 0
    while len(level) > 1:
        if len(level) % 2:
            level.append(None)
        level = [_named(m, _join(lo, hi, k, last), f"{name}_{k + 1}_{i}")
                 for i, (lo, hi) in enumerate(zip(level[0::2], level[1::2], strict=True))]
        k += 1
    return level[0], k


def _named(m, node, prefix):
    if node is None:
        return None
    for field in _Node.__slots__:
        value = getattr(node, field)
        if value is not None and len(value) and not isinstance(value, Const):
            signal = Signal(len(value), name=f"{prefix}_{field}")
            m.d.comb += signal.eq(value)
            setattr(node, field, signal)
    return node


def _join(lo, hi, k, last):
    """The node of 2**(k+1) bits made of ``lo`` and ``hi`` (each of 2**k bits, or None)."""
    if lo is None and hi is None:
        return None
    upper = Const(1, 1)
    if hi is None:
        node = _Node(lo.any, Cat(lo.first, Const(0, 1)))
        if last is not None:
            node.after_any = _mux(last[k], None, lo.after_any)
            node.after = Cat(lo.after, Const(0, 1))
        return node
    if lo is None:
        node = _Node(hi.any, Cat(hi.first, upper))
        if last is not None:
            # last in the lower half (bit k is 0): every set bit of hi is above it
            node.after_any = _mux(last[k], hi.after_any, hi.any)
            node.after = Cat(Mux(last[k], hi.after, hi.first) if k else hi.first, upper)
        return node
    node = _Node(lo.any | hi.any,
                 Cat(Mux(lo.any, lo.first, hi.first), ~lo.any) if k else ~lo.any)
    if last is not None:
        node.after_any = _mux(last[k], hi.after_any, _or(lo.after_any, hi.any))
        if k == 0:      # two bits: the one above last is the upper one
            node.after = upper
        else:
            take_lo = ~last[k] & _bit(lo.after_any)
            node.after = Cat(Mux(take_lo, lo.after, Mux(last[k], hi.after, hi.first)),
                             ~take_lo)
    return node


def _index(value, width):
    return Cat(value, Const(0, max(0, width - len(value))))[:width]


def _flat_lowest(bits, width):
    """The flat form: each index bit an OR of the bits that are the lowest set (none
    set below them), side by side."""
    n = len(bits)
    lowest = [bits[q] & ~bits[:q].any() if q else bits[0] for q in range(n)]
    return Cat(*(Cat(*(lowest[q] for q in range(n) if q >> b & 1)).any()
                 if n > 1 << b else Const(0, 1) for b in range(width)))


def lowest_set(m, bits, width, name="lowest", flat_max=FLAT_MAX):
    """The index (``width`` bits) of the lowest set bit of ``bits`` (with none set, some
    index below ``len(bits)``)."""
    if len(bits) <= flat_max:
        return _flat_lowest(bits, width)
    root, _ = _build(m, list(bits), None, name)
    return Const(0, width) if root is None else _index(root.first, width)


def round_robin(m, mask, last, width, name="rr", flat_max=FLAT_MAX):
    """``(pick, found)``: the index (``width`` bits) of the lowest set bit of ``mask``
    above ``last``, else of the lowest set bit at all (with none set, some index below
    ``len(mask)``); whether any is set. ``last`` must be below ``len(mask)`` rounded up
    to a power of two."""
    n = len(mask)
    if n <= flat_max:
        # (nothing is above ``last`` at index 0: no constant comparison for lint to flag)
        above = Signal(n, name=f"{name}_above")
        m.d.comb += above.eq(Cat(Const(0, 1), *(mask[q] & (q > last) for q in range(1, n))))
        return Mux(above.any(), _flat_lowest(above, width), _flat_lowest(mask, width)), \
            mask.any()
    root, levels = _build(m, list(mask), last, name)
    if root is None:
        return Const(0, width), Const(0, 1)
    assert len(last) >= levels, "last is too narrow for the mask"
    if root.after_any is None:
        return _index(root.first, width), root.any
    return _index(Mux(root.after_any, root.after, root.first), width), root.any
