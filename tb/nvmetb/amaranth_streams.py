"""Stream drivers for block tests in the Amaranth simulator.

:class:`Source` offers payloads on an ``amaranth.lib.stream`` interface (with random idle
cycles), :class:`Sink` takes them (with random backpressure) and checks the producer keeps
the stream's rule: once ``valid`` is high it stays high with the same payload until
``ready``. Both are processes for ``Simulator.add_process``; payloads are whatever
``ctx.set`` takes for the stream's payload (an int or a mapping for a layout)."""

import random

from amaranth.lib import data

__all__ = ["Source", "Sink", "StreamRuleError"]


class StreamRuleError(AssertionError):
    pass


class Source:
    """Offers ``items`` in order; ``gap``: probability of an idle cycle between items."""

    def __init__(self, stream, items=(), *, gap=0.0, rng=None):
        self.stream = stream
        self.items = list(items)
        self.gap = gap
        self.rng = rng or random.Random(0)
        self.sent = 0

    def push(self, item):
        self.items.append(item)

    @property
    def done(self):
        return self.sent == len(self.items)

    def process(self):
        s = self.stream
        shape = data.Layout.cast(s.payload.shape()) if isinstance(s.payload, data.View) else None

        def value(item):
            if shape is not None and isinstance(item, dict):
                return shape.const(item)
            return item

        async def source(ctx):
            ctx.set(s.valid, 0)
            offered = False
            async for _, _, valid, ready in ctx.tick().sample(s.valid, s.ready):
                if valid and ready:
                    self.sent += 1
                    offered = False
                if not offered:
                    if self.sent < len(self.items) and not self.rng.random() < self.gap:
                        ctx.set(s.payload, value(self.items[self.sent]))
                        ctx.set(s.valid, 1)
                        offered = True
                    else:
                        ctx.set(s.valid, 0)
        return source


class Sink:
    """Takes every payload (``received``: ints or layout views as sampled); ``stall``:
    probability that ``ready`` is low in a cycle."""

    def __init__(self, stream, *, stall=0.0, rng=None, convert=None):
        self.stream = stream
        self.stall = stall
        self.rng = rng or random.Random(1)
        self.convert = convert
        self.received = []

    def process(self):
        s = self.stream

        async def sink(ctx):
            ctx.set(s.ready, 0)
            held = None
            async for _, _, valid, ready, payload in ctx.tick().sample(
                    s.valid, s.ready, s.payload):
                bits = payload.as_bits() if isinstance(payload, data.Const) else int(payload)
                if held is not None and (not valid or bits != held):
                    raise StreamRuleError(f"{s.valid.name}: valid dropped or payload "
                                          f"changed before ready")
                if valid and ready:
                    self.received.append(self.convert(payload) if self.convert else payload)
                    held = None
                elif valid:
                    held = bits
                ctx.set(s.ready, 0 if self.rng.random() < self.stall else 1)
        return sink
