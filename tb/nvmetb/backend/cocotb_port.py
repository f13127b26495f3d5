"""The bench's initiator (:class:`~.behaviour.BackendInitiator`) on a backend port of the
generated Verilog, under cocotb.

Port names are Amaranth's flattened names under a prefix (``port__cmd__valid``,
``port__cmd__payload``, ... for a backend on its own; ``backend__cmd__valid`` for the
core's external backend port); payloads are packed and unpacked with the layouts the
gateware uses. The driver samples the backend's outputs right after every rising edge
(what the edge saw) and drives its own for the next cycle; while the reset is high it
drives nothing and does not step::

    initiator = BackendInitiator(config.data_width, Namespace(config.namespace_bytes))
    driver = CocotbInitiator(dut, initiator, prefix="port").start()
    initiator.write(0, data)
    await driver.wait_idle()
"""

import cocotb
from amaranth.lib import data
from cocotb.triggers import RisingEdge

from nvmecore.backend.interface import BackendBeat, BackendCommand, BackendDone

from .behaviour import BackendInitiator

__all__ = ["CocotbInitiator"]


class CocotbInitiator:
    def __init__(self, dut, initiator: BackendInitiator, *, prefix="port", clock=None,
                 reset=None, addr_width, data_width):
        self.dut = dut
        self.initiator = initiator
        self.clk = clock if clock is not None else dut.clk
        self.rst = reset if reset is not None else getattr(dut, "rst", None)

        def sig(name):
            return getattr(dut, f"{prefix}__{name}")

        self.cmd_valid, self.cmd_ready, self.cmd_payload = (
            sig("cmd__valid"), sig("cmd__ready"), sig("cmd__payload"))
        self.wdata_valid, self.wdata_ready, self.wdata_payload = (
            sig("wdata__valid"), sig("wdata__ready"), sig("wdata__payload"))
        self.rdata_valid, self.rdata_ready, self.rdata_payload = (
            sig("rdata__valid"), sig("rdata__ready"), sig("rdata__payload"))
        self.done_valid, self.done_ready, self.done_payload = (
            sig("done__valid"), sig("done__ready"), sig("done__payload"))
        self.abort = sig("abort")
        self._cmd = data.Layout.cast(BackendCommand(addr_width))
        self._beat = data.Layout.cast(BackendBeat(data_width))
        self._done = data.Layout.cast(BackendDone)
        # Beats are packed by hand (cheaper than a layout const per beat), at the
        # layout's own offsets.
        self._last_bit = self._beat["last"].offset
        self._data_bit = self._beat["data"].offset
        self._data_mask = (1 << self._beat["data"].width) - 1
        self._written = {}
        self._task = None

    def start(self):
        for payload in (self.cmd_payload, self.wdata_payload):
            self._set(payload, 0)
        self._apply(self.initiator._drive)
        self._task = cocotb.start_soon(self._run())
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _set(self, handle, value):
        """Write ``value`` to ``handle`` unless it holds it already (writes cost)."""
        if self._written.get(handle._name) != value:
            self._written[handle._name] = value
            handle.value = value

    def _apply(self, drive):
        if drive.cmd is None:
            self._set(self.cmd_valid, 0)
        else:
            op, tag, addr, length = drive.cmd
            self._set(self.cmd_payload, self._cmd.const(
                {"op": op, "tag": tag, "addr": addr, "length": length}).as_bits())
            self._set(self.cmd_valid, 1)
        if drive.wdata is None:
            self._set(self.wdata_valid, 0)
        else:
            value, last = drive.wdata
            self._set(self.wdata_payload,
                      value << self._data_bit | int(last) << self._last_bit)
            self._set(self.wdata_valid, 1)
        self._set(self.rdata_ready, int(drive.rdata_ready))
        self._set(self.done_ready, int(drive.done_ready))
        self._set(self.abort, int(drive.abort))

    async def _run(self):
        initiator = self.initiator
        while True:
            await RisingEdge(self.clk)
            if self.rst is not None and self.rst.value == 1:
                continue
            rdata_valid = int(self.rdata_valid.value) == 1
            done_valid = int(self.done_valid.value) == 1
            rdata = done = None
            if rdata_valid:
                beat = int(self.rdata_payload.value)
                rdata = (beat >> self._data_bit & self._data_mask, beat >> self._last_bit & 1)
            if done_valid:
                p = self._done.from_bits(int(self.done_payload.value))
                done = (p.tag, p.status.value)
            drive = initiator.step(int(self.cmd_ready.value) == 1,
                                   int(self.wdata_ready.value) == 1,
                                   rdata_valid, rdata, done_valid, done)
            self._apply(drive)

    async def wait_idle(self, timeout=100_000):
        """Wait until every command is done; fail after ``timeout`` cycles."""
        initiator = self.initiator
        for _ in range(timeout):
            if initiator.idle:
                return
            await RisingEdge(self.clk)
        in_flight = [r for reqs in initiator.in_flight.values() for r in reqs]
        raise AssertionError(f"{initiator.name}: not idle after {timeout} cycles; in "
                             f"flight: {in_flight[:8]}, queued: {len(initiator.pending)}")
