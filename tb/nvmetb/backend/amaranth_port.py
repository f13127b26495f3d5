"""The bench's initiator (:class:`~.behaviour.BackendInitiator`) on a backend's port in
the Amaranth simulator.

:class:`AmaranthInitiator` is a process for ``Simulator.add_process`` that samples the
backend's outputs at every clock edge (``ctx.tick().sample(...)``) and drives ``cmd``,
``wdata``, the two ``ready`` s and ``abort`` for the next cycle::

    ns = Namespace(config.namespace_bytes)
    initiator = BackendInitiator(config.data_width, ns, INITIATOR_SETTINGS["busy"])
    sim.add_process(AmaranthInitiator(dut.port, initiator).process())

    async def testbench(ctx):
        initiator.write(0, data)
        await wait_idle(ctx, initiator)

``port`` is the backend's ``port`` member (the target side of ``BackendPort``).
"""

from amaranth.lib import data

from nvmecore.backend.interface import BackendBeat, BackendCommand

from .behaviour import BackendInitiator

__all__ = ["AmaranthInitiator", "wait_idle"]


class AmaranthInitiator:
    def __init__(self, port, initiator: BackendInitiator):
        self.port = port
        self.initiator = initiator
        addr_width = len(port.cmd.payload.addr)
        self._cmd = data.Layout.cast(BackendCommand(addr_width))
        self._beat = data.Layout.cast(BackendBeat(len(port.wdata.payload.data)))

    def _apply(self, ctx, drive):
        port = self.port
        if drive.cmd is None:
            ctx.set(port.cmd.valid, 0)
        else:
            op, tag, addr, length = drive.cmd
            ctx.set(port.cmd.payload, self._cmd.const(
                {"op": op, "tag": tag, "addr": addr, "length": length}))
            ctx.set(port.cmd.valid, 1)
        if drive.wdata is None:
            ctx.set(port.wdata.valid, 0)
        else:
            value, last = drive.wdata
            ctx.set(port.wdata.payload, self._beat.const({"data": value, "last": last}))
            ctx.set(port.wdata.valid, 1)
        ctx.set(port.rdata.ready, drive.rdata_ready)
        ctx.set(port.done.ready, drive.done_ready)
        ctx.set(port.abort, drive.abort)

    def process(self):
        port, initiator = self.port, self.initiator

        async def backend_initiator(ctx):
            self._apply(ctx, initiator._drive)
            async for _, _, cr, wr, rv, rp, dv, dp in ctx.tick().sample(
                    port.cmd.ready, port.wdata.ready, port.rdata.valid, port.rdata.payload,
                    port.done.valid, port.done.payload):
                drive = initiator.step(bool(cr), bool(wr), bool(rv), (rp.data, rp.last),
                                       bool(dv), (dp.tag, dp.status.value))
                self._apply(ctx, drive)
        return backend_initiator


async def wait_idle(ctx, initiator: BackendInitiator, timeout=100_000):
    """Tick until ``initiator`` is idle (every command done); fail after ``timeout``
    cycles."""
    for _ in range(timeout):
        if initiator.idle:
            return
        await ctx.tick()
    in_flight = [r for reqs in initiator.in_flight.values() for r in reqs]
    raise AssertionError(f"{initiator.name}: not idle after {timeout} cycles; in flight: "
                         f"{in_flight[:8]}, queued: {len(initiator.pending)}")
