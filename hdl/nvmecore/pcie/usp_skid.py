"""A register slice for one of the hard IP's AXI4-Stream interfaces (250 MHz structure).

:class:`AxisSkid` sits between the hard IP and an engine of the adapter, on either side:
its ``tready`` towards the sender is a register (two beats of storage: the output
register and a skid register), and its output (``tvalid``, ``tdata``, ``tkeep``,
``tlast``, ``tuser``) comes straight from the output register. So the hard IP's inputs
(``s_axis_cc_*``, ``m_axis_cq_tready``, ``m_axis_rc_tready``) are driven from registers,
and the engines' long decisions stay inside the adapter. Full throughput; one cycle of
latency. A TLP that enters without gaps leaves without gaps.
"""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .usp_layouts import Axis

__all__ = ["AxisSkid", "StreamSkid"]

_FIELDS = ("tdata", "tkeep", "tlast", "tuser")


class AxisSkid(wiring.Component):
    """``i``: the stream in (its ``tready`` a register); ``o``: the stream out (every
    field a register)."""

    def __init__(self, interface, width):
        self._sig = Axis(interface, width)
        super().__init__({"i": In(self._sig), "o": Out(self._sig)})

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        skid = self._sig.flip().create(path=("skid",))
        ready = Signal(init=1)                  # i.tready, registered: the skid is empty
        m.d.comb += i.tready.eq(ready)
        take = i.tvalid & ready
        with m.If(~o.tvalid | o.tready):        # the output register moves on
            with m.If(~ready):                  # from the skid register
                m.d.sync += [getattr(o, f).eq(getattr(skid, f)) for f in _FIELDS]
                m.d.sync += [o.tvalid.eq(1), ready.eq(1)]
            with m.Else():                      # from the input
                m.d.sync += [getattr(o, f).eq(getattr(i, f)) for f in _FIELDS]
                m.d.sync += o.tvalid.eq(i.tvalid)
        with m.Elif(take):                      # the output is held: keep the beat aside
            m.d.sync += [getattr(skid, f).eq(getattr(i, f)) for f in _FIELDS]
            m.d.sync += ready.eq(0)
        return m


class StreamSkid(wiring.Component):
    """The same register slice for a ``lib.stream`` of ``shape``: ``i.ready`` and every
    output a register, full throughput, one cycle of latency. Cuts a long ready/valid
    chain between two blocks (the core's DMA read requests and the read engine, the
    engine's read TLPs and the requester)."""

    def __init__(self, shape):
        super().__init__({"i": In(stream.Signature(shape)),
                          "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        i, o = self.i, self.o
        skid = Signal.like(i.payload)
        ready = Signal(init=1)
        m.d.comb += i.ready.eq(ready)
        with m.If(~o.valid | o.ready):
            with m.If(~ready):
                m.d.sync += [o.payload.eq(skid), o.valid.eq(1), ready.eq(1)]
            with m.Else():
                m.d.sync += [o.payload.eq(i.payload), o.valid.eq(i.valid)]
        with m.Elif(i.valid & ready):
            m.d.sync += [skid.eq(i.payload), ready.eq(0)]
        return m
