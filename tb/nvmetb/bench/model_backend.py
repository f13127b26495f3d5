"""A bench backend whose "RTL" is a second reference model: the lock-step bench without a
simulator.

:class:`ModelBackend` answers the register bus, the configuration inputs and the test
ports with a :class:`~nvmetb.model.ControllerModel` of its own, whose DMA goes through a
:class:`~nvmetb.hostmem.HostMemory` (:class:`~nvmetb.transports.model.DevicePort`), as
the RTL's does through the DMA port drivers. :func:`run_lockstep_model` runs a host
scenario through :class:`~nvmetb.bench.transport.BenchTransport` on it, with the
namespace hook wired to the second model's image: the whole comparison path of the
benches (CQ entries, data buffers, MSI-X messages, namespace) runs in the quick tier,
and a test can disturb the stand-in (reorder its completions, change a byte) to see the
comparison fail.
"""

import asyncio

from nvmecore import CoreConfig
from nvmetb.hostmem import HostMemory
from nvmetb.model import ControllerModel
from nvmetb.transports.model import DevicePort

from .harness import PATTERNS, Backend, CheckedCore
from .transport import BenchTransport

__all__ = ["ModelBackend", "run_lockstep_model"]


class ModelBackend(Backend):
    """A :class:`Backend` played by a reference model over ``memory``."""

    def __init__(self, config, memory: HostMemory, seed=0):
        super().__init__(config, PATTERNS["fast"], seed)
        self.memory = memory
        self.model = ControllerModel(config, memory=DevicePort(memory))
        self._sent = 0

    def _forward(self):
        """The stand-in's MSI-X messages go out on its DMA write path, into the host
        memory's message region."""
        for write in self.model.dma_writes[self._sent:]:
            self.memory.device_write(write.addr, write.payload)
        self._sent = len(self.model.dma_writes)

    async def bus_write(self, addr, be, data):
        self.model.reg_write(addr, data, be)
        self._forward()

    async def bus_read(self, addr, be):
        return self.model.reg_read(addr, be)

    async def set_cfg(self, msix_enable, msix_function_mask, bus_master_enable):
        self.model.set_cfg(msix_enable, msix_function_mask, bus_master_enable)
        self._forward()

    async def queue(self, qid, cq, size):
        self.model.set_queue(qid, cq, size)

    async def irq(self, vector, deassert):
        self.model.irq(vector, deassert)
        self._forward()

    async def flr(self):
        self.model.bus_reset()
        self._sent = len(self.model.dma_writes)

    async def wait(self, cycles):
        self.model.advance_time(cycles)
        self._forward()

    async def set_temperature(self, kelvin):
        self.model.temperature = kelvin
        self._forward()

    def intx(self):
        return self.model.intx


def run_lockstep_model(scenario, config: CoreConfig | None = None, *, disturb=None,
                       **kwargs):
    """Run ``scenario(host, bench, **kwargs)`` on :class:`BenchTransport` with a
    :class:`ModelBackend` standing in for the RTL, then ``bench.compare()``.
    ``disturb(bench)``, if given, runs between the scenario and the comparison (to break
    something on purpose). Returns ``(host, bench)``."""
    from nvmetb.host import NvmeHost

    config = config or CoreConfig()
    memory = HostMemory(max_payload_size=5, max_read_request_size=5)
    backend = ModelBackend(config, memory)

    async def image():
        return bytes(backend.model.namespace)

    bench = BenchTransport(CheckedCore(backend), memory, namespace=image,
                           fail_namespace=backend.model.fail_namespace)
    host = NvmeHost(bench, poll_us=0.1, command_timeout_us=200)

    async def main():
        await scenario(host, bench, **kwargs)
        if disturb is not None:
            disturb(bench)
        await bench.compare()

    asyncio.run(main())
    return host, bench
