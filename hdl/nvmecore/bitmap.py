"""Per-queue bitmaps written one bit at a time, as whole-vector expressions.

``vector.bit_select(index, 1).eq(value)`` becomes, in the emitted Verilog, a ``case`` on
``index`` with one arm per bit, each assigning the whole vector with one bit changed;
Yosys's ``proc`` turns that into a multiplexer of ``n`` arms of ``n`` bits: at 511 queues
a few such writes took the queue state 6 GB and more than five minutes to read in, and
the 256- and 511-queue tops could not be synthesised. Here a write is a one-hot mask (a
shift) and the register's next value ``(vector & ~cleared) | set``: linear in ``n``,
the same logic after optimisation.
"""

from amaranth import Const, Mux

__all__ = ["onehot", "with_bits"]


def onehot(index, enable, width):
    """``width`` bits: bit ``index`` set when ``enable`` (none when ``index`` is out of
    range, as ``bit_select`` writes nothing there)."""
    return Mux(enable, (Const(1, width) << index)[:width], 0)


def with_bits(vector, *, clear=0, set=0):
    """``vector`` with the bits of mask ``clear`` cleared, then those of ``set`` set."""
    return (vector & ~clear) | set
