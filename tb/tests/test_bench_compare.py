"""Quick tier: BenchTransport compares every DMA write and every MSI-X message, whatever
the host called its buffers (or if it named none), with a second reference model
standing in for the RTL (run_lockstep_model). Each case breaks one write of the stand-in
and expects the comparison to fail; a host of its own, which allocates no named
buffer, still gets every CQ entry, data byte and message compared."""

import pytest

from nvmecore import CoreConfig
from nvmecore.layouts import MSIX_ENTRY_BYTES, MSIX_TABLE_BASE, AdminOpcode, NvmOpcode
from nvmetb.bench.harness import Mismatch
from nvmetb.bench.model_backend import run_lockstep_model
from nvmetb.host import NvmeHost
from nvmetb.host.driver import build_sqe
from nvmetb.hostmem import DeviceWrite

pytestmark = pytest.mark.quick

CONFIG = CoreConfig(io_queues=2, max_queue_entries=64, data_width=128, debug=True)


async def own_host(host: NvmeHost, bench, *, msix_in_buffer=False):
    """A host of its own: queues, data buffers and (``msix_in_buffer``) the MSI-X
    message target all allocated without names; commands built by hand."""
    mem = bench.alloc
    await host.read_cap()
    await host.t.pci_config(bus_master=True, msix_enable=True)
    target = mem(4096) if msix_in_buffer else None
    for vector in range(2):
        addr, value = (target + 4 * vector, 0x600D + vector) if msix_in_buffer else \
            bench.msix_vector_address(vector)
        base = MSIX_TABLE_BASE + MSIX_ENTRY_BYTES * vector
        await bench.mmio_write(base, addr & 0xFFFF_FFFF)
        await bench.mmio_write(base + 4, addr >> 32)
        await bench.mmio_write(base + 8, value)
        await bench.mmio_write(base + 12, 0)
    host.vectors = 2
    await host.disable()
    host.t = _Unnamed(bench)                      # the driver's own buffers unnamed too
    await host.enable()
    await host.create_io_cq(1, 8, vector=1)
    await host.create_io_sq(1, 8)
    data = mem(4096)
    bench.mem_write(data, bytes(range(256)) * 16)
    for opcode in (NvmOpcode.WRITE, NvmOpcode.READ):
        cid = await host.submit(1, build_sqe(opcode, 0, nsid=1, prp1=data, cdw12=7))
        await host.wait_completion(1, cid)
    await host.admin(AdminOpcode.IDENTIFY, cdw10=1, prp1=mem(4096))
    await bench.wait(2)
    bench.scenario_data = data


class _Unnamed:
    """The bench transport with every allocation unnamed."""

    def __init__(self, bench):
        self._bench = bench

    def alloc(self, size, align=4096, *, offset=0, name=None, above_4g=None):
        return self._bench.alloc(size, align, offset=offset, above_4g=above_4g)

    def __getattr__(self, name):
        return getattr(self._bench, name)


def _writes(bench, length):
    return [i for i, w in enumerate(bench.memory.writes) if len(w.data) == length]


def _flip(bench, i, byte=0):
    w = bench.memory.writes[i]
    raw = bytearray(w.data)
    raw[byte] ^= 1
    bench.memory.writes[i] = DeviceWrite(w.addr, bytes(raw))
    bench.memory._store(w.addr, bytes(raw))


def test_unnamed_buffers_compared():
    _, bench = run_lockstep_model(own_host, CONFIG)
    assert all(b.name.startswith("buf") for b in bench.memory.buffers)   # no names given
    assert bench.compared["cq entries"] == 5
    assert bench.compared["data bytes"] == 4096 + 4096       # the Read's and Identify's
    assert bench.compared["msix messages"] == 5


@pytest.mark.parametrize("what", ["cq entry", "read data", "identify data"])
def test_unnamed_buffer_difference_fails(what):
    def disturb(bench):
        cqes = _writes(bench, 16)
        big = [i for i, w in enumerate(bench.memory.writes) if len(w.data) > 16]
        if what == "cq entry":
            _flip(bench, cqes[-1], 12)                          # the admin CQ's last CID
        elif what == "read data":
            _flip(bench, next(i for i in big if bench.memory.writes[i].addr
                              == bench.scenario_data))
        else:
            _flip(bench, big[-1], 7)
    with pytest.raises(Mismatch):
        run_lockstep_model(own_host, CONFIG, disturb=disturb)


def test_extra_data_write_fails():
    def disturb(bench):
        # A buffer the device never wrote (an SQ): one byte written there.
        quiet = next(b for b in bench.memory.buffers
                     if not any(b.contains(w.addr) for w in bench.memory.writes))
        bench.memory.writes.append(DeviceWrite(quiet.addr + 8, b"\x01"))
    with pytest.raises(Mismatch, match="DMA data writes|data written"):
        run_lockstep_model(own_host, CONFIG, disturb=disturb)


def test_messages_aimed_at_a_buffer_are_messages():
    _, bench = run_lockstep_model(own_host, CONFIG, msix_in_buffer=True)
    assert not bench.memory.msix_messages                  # none in the message region
    assert bench.compared["msix messages"] == 5


def test_message_aimed_at_a_buffer_compared():
    def disturb(bench):
        messages = _writes(bench, 4)
        _flip(bench, messages[-1])
    with pytest.raises(Mismatch, match="MSI-X"):
        run_lockstep_model(own_host, CONFIG, disturb=disturb, msix_in_buffer=True)
