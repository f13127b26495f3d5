"""Clock-edge work of an Amaranth-simulator bench in one process, with cheap sampling.

The counterpart of :mod:`nvmetb.cocotb_edges`. Each simulator process costs a trigger
evaluation and a coroutine switch per edge, and sampling a port of a ``data`` layout
builds a view object per edge; here every monitor and driver is a *step* of one
:class:`EdgeProcess`, which samples, at every clock edge, the plain values (raw bits) its
steps ask for and calls the steps in the order they were added::

    edges = EdgeProcess()
    ready = Driven(stream.ready)
    request = Packer(DmaReadRequest)

    def step(ctx, valid, payload):      # the values sampled at this edge, as ints
        if valid and ready.value:
            p = request.unpack(payload)  # only when there is something to decode
            ...
        ready.set(ctx, 1)

    edges.add(step, stream.valid, stream.payload, init=ready.reset)
    sim.add_process(edges.process())

Values are sampled at the active edge, before the design updates (``ctx.tick().sample``),
as a separate process would see them; what a step sets takes effect for the next edge.
"""

from amaranth.hdl import Value

__all__ = ["EdgeProcess", "Driven"]


class EdgeProcess:
    """One simulator process for the steps added to it (add them all before the
    simulation starts)."""

    def __init__(self, domain="sync"):
        self.domain = domain
        self._values = []
        self._steps = []          # (step, first sampled value, end)
        self._inits = []

    def add(self, step, *values, init=None):
        """Call ``step(ctx, *sampled)`` at every edge with ``values`` sampled at that edge
        (ints: the raw bits of a port with a ``data`` layout; decode them with a
        :class:`~nvmetb.packing.Packer`). ``init(ctx)``, if given, runs once before the
        first edge."""
        start = len(self._values)
        self._values += [Value.cast(value) for value in values]
        self._steps.append((step, start, len(self._values)))
        if init is not None:
            self._inits.append(init)

    def process(self):
        """The process for ``Simulator.add_process``."""
        values, steps, inits = tuple(self._values), tuple(self._steps), tuple(self._inits)

        async def edges(ctx):
            for init in inits:
                init(ctx)
            async for _, _, *sampled in ctx.tick(self.domain).sample(*values):
                for step, start, end in steps:
                    step(ctx, *sampled[start:end])
        return edges


class Driven:
    """A signal that one process alone drives: :meth:`set` changes it only when the value
    changes, and :attr:`value` is the value set last (what the design sees at the next
    edge), so it need not be sampled."""

    def __init__(self, signal, value=0):
        self.signal = Value.cast(signal)
        self.initial = value
        self.value = None

    def reset(self, ctx):
        """Drive the initial value (an ``init`` for :meth:`EdgeProcess.add`)."""
        self.value = None
        self.set(ctx, self.initial)

    def set(self, ctx, value):
        value = int(value)
        if value != self.value:
            ctx.set(self.signal, value)
            self.value = value
