"""Quick tier: the bench's host memory, its DMA port drivers (Amaranth simulator, against a
small stand-in component that issues DMA requests from a list) and the NVMe host driver
(against a fake transport that completes commands at once)."""

import asyncio
import random

import pytest
from amaranth import Array, Const, Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from nvmecore.bus import DmaRead, DmaWrite, PcieConfig
from nvmecore.layouts import (
    DOORBELL_BASE,
    MSIX_TABLE_BASE,
    AdminOpcode,
    Cap,
    CommandSpecificStatus,
    Cqe,
    Csts,
    GenericStatus,
    NvmOpcode,
    Reg,
    ShstState,
    Sqe,
)
from nvmetb.dma.amaranth_ports import AmaranthDma
from nvmetb.dma.behaviour import DMA_SETTINGS, DmaSettings, ReadResponder, StreamRule, WriteSink
from nvmetb.host import (
    CommandError,
    ControllerTimeout,
    HostMemoryTransport,
    NvmeHost,
    ProtocolError,
    QueueFull,
    Status,
    build_sqe,
    decode_cqe,
)
from nvmetb.host.driver import Cns, FeatureId
from nvmetb.hostmem import PAGE_SIZE, POISON_BYTE, DeviceRead, HostMemory

pytestmark = pytest.mark.quick


# -- Host memory ------------------------------------------------------------------------------

def kinds(memory):
    return sorted(v.kind for v in memory.take_violations())


def test_alloc_alignment_guards_and_high_memory():
    mem = HostMemory()
    a = mem.alloc(100, align=64, name="a")
    b = mem.alloc(PAGE_SIZE, name="b")
    c = mem.alloc(10, align=PAGE_SIZE, offset=0x24)
    hi = mem.alloc(2 * PAGE_SIZE, above_4g=True)
    assert a % 64 == 0 and b % PAGE_SIZE == 0 and c % PAGE_SIZE == 0x24
    assert hi >= 1 << 32 and hi % PAGE_SIZE == 0 and (hi >> 32) != 0
    assert b - (a + 100) >= mem.guard and c - (b + PAGE_SIZE) >= mem.guard
    assert mem.buffer_at(b).name == "b" and mem.buffer_at(b + PAGE_SIZE - 4, 4).name == "b"
    assert mem.buffer_at(b + PAGE_SIZE - 4, 5) is None
    # New buffers read as their fill; the host may touch only buffers.
    assert mem.read(b, 8) == bytes(8)
    assert mem.read(mem.alloc(16, fill=0xA5), 2) == b"\xa5\xa5"
    mem.write(hi + PAGE_SIZE - 2, b"\x01\x02\x03\x04")        # across a page: fine for the host
    assert mem.read(hi + PAGE_SIZE - 2, 4) == b"\x01\x02\x03\x04"
    for addr, n in ((a + 100, 1), (b - 1, 2), (c + 10, 1)):
        with pytest.raises(ValueError):
            mem.read(addr, n)
        with pytest.raises(ValueError):
            mem.write(addr, bytes(n))


def test_device_reads_are_checked():
    mem = HostMemory(max_read_request_size=1)                  # 256 B
    buf = mem.alloc(3 * PAGE_SIZE)
    mem.write(buf, bytes(range(256)))
    assert mem.device_read(buf, 256) == (bytes(range(256)), False)
    assert mem.device_read(buf + PAGE_SIZE - 128, 128)[1] is False
    assert mem.violations == []
    mem.device_read(buf, 257)
    assert kinds(mem) == ["mrrs"]
    assert mem.device_read(buf + 2, 256, max_read_request_size=5)[0] == bytes(range(2, 256)) \
        + bytes(2)
    assert mem.violations == []
    mem.device_read(buf + PAGE_SIZE - 64, 128)
    assert kinds(mem) == ["crosses-4k"]
    mem.device_read(buf, 0)
    mem.device_read(buf, 4097, max_read_request_size=5)
    assert kinds(mem) == ["crosses-4k", "length", "length"]
    # Outside any buffer: an error and poison data, and a violation.
    data, error = mem.device_read(buf + 3 * PAGE_SIZE, 4)
    assert error and data == bytes([POISON_BYTE]) * 4
    small = mem.alloc(16, align=64)
    assert mem.device_read(small + 8, 8) == (bytes(8), False)
    data, error = mem.device_read(small + 8, 9)            # runs past the end
    assert error
    assert kinds(mem) == ["unmapped", "unmapped"]
    assert mem.reads[0] == DeviceRead(buf, 256, False) and mem.reads[-1].error
    mem.check()
    mem.device_read(buf + 100, PAGE_SIZE, max_read_request_size=5)
    with pytest.raises(AssertionError, match="crosses-4k"):
        mem.check()


def test_device_writes_are_checked():
    mem = HostMemory(max_payload_size=0)                       # 128 B
    buf = mem.alloc(2 * PAGE_SIZE)
    mem.device_write(buf + 8, b"\x11" * 128)
    assert mem.read(buf + 8, 128) == b"\x11" * 128 and mem.violations == []
    mem.device_write(buf, b"\x22" * 129)
    assert kinds(mem) == ["mps"]
    mem.device_write(buf, b"\x22" * 256, max_payload_size=1)
    assert mem.violations == []
    mem.device_write(buf + PAGE_SIZE - 4, bytes(8))
    assert kinds(mem) == ["crosses-4k"]
    before = mem.read(buf, 2 * PAGE_SIZE)
    mem.device_write(buf + 2 * PAGE_SIZE, b"\x33" * 4)         # into the guard: dropped
    mem.device_write(buf - 8, b"\x33" * 4)
    assert kinds(mem) == ["unmapped", "unmapped"]
    assert mem.read(buf, 2 * PAGE_SIZE) == before
    assert [w.addr for w in mem.writes] == [buf + 8, buf, buf, buf + PAGE_SIZE - 4,
                                             buf + 2 * PAGE_SIZE, buf - 8]
    # A freed buffer is gone for the device.
    mem.free(buf)
    assert mem.device_read(buf, 4)[1]
    mem.device_write(buf, b"\x44")
    assert kinds(mem) == ["unmapped", "unmapped"]


def test_msix_messages():
    mem = HostMemory()
    for vector in (0, 3, 2047):
        addr, value = mem.msix_address(vector)
        mem.device_write(addr, value.to_bytes(4, "little"))
    addr3, value3 = mem.msix_address(3)
    mem.device_write(addr3, (value3 ^ 1).to_bytes(4, "little"))  # unknown data: no vector
    assert [m.vector for m in mem.msix_messages] == [0, 3, 2047, None]
    assert mem.msix_messages[1].addr == addr3 and mem.msix_messages[1].data == value3
    assert mem.interrupts(3) == 1 and mem.writes == [] and mem.violations == []
    assert len({mem.msix_address(v) for v in range(64)}) == 64
    mem.device_write(addr3, bytes(8))
    mem.device_write(addr3 + 2, bytes(4))
    assert kinds(mem) == ["msix", "msix"] and len(mem.msix_messages) == 4
    mem.device_read(addr3, 4)
    assert kinds(mem) == ["unmapped"]


def test_read_fault_injection():
    mem = HostMemory(max_read_request_size=5)
    a, b = mem.alloc(PAGE_SIZE), mem.alloc(PAGE_SIZE)
    mem.write(a, b"\x5a" * 64)
    once = mem.fail_reads((a + 64, a + 128), count=1)
    assert not mem.device_read(a, 64)[1]                     # ends just before the range
    assert mem.device_read(a + 120, 16) == (bytes([POISON_BYTE]) * 16, True)
    assert not mem.device_read(a + 64, 64)[1]                 # count spent
    assert once.hits == 1
    always = mem.fail_reads(lambda addr, length: mem.buffer_at(addr) is not None
                            and mem.buffer_at(addr).addr == b)
    for _ in range(3):
        assert mem.device_read(b + 8, 8)[1]
    assert always.hits == 3 and not mem.device_read(a, 4)[1]
    assert [r.error for r in mem.reads] == [False, True, False, True, True, True, False]
    mem.clear_faults()
    assert not mem.device_read(b, 4)[1]
    assert mem.violations == []                               # injected errors are no breach


def test_read_responder_beats_and_latency():
    """The cycle-level read behaviour on its own: latency, order, beats, error flags."""
    mem = HostMemory(max_read_request_size=5)
    buf = mem.alloc(PAGE_SIZE)
    mem.write(buf, bytes(range(40)))
    mem.fail_reads((buf + 32, buf + 40))
    rsp = ReadResponder(mem, 128, DmaSettings(read_latency=3, read_error_beats="last"))
    ready, beat = rsp.step((buf, 20, 7))          # accepted at edge 1
    assert ready and beat is None
    assert rsp.step()[1] is None                  # edge 2
    ready, beat = rsp.step((buf + 32, 8, 9))      # edge 3: first beat offered for edge 4
    assert beat == (int.from_bytes(bytes(range(16)), "little"), 7, False, False)
    assert rsp.step()[1] == beat                  # not taken: offered again
    beat = rsp.step(beat_taken=True)[1]
    assert beat == (int.from_bytes(bytes(range(16, 20)), "little"), 7, True, False)
    assert rsp.step(beat_taken=True)[1] == (int.from_bytes(bytes([POISON_BYTE]) * 8, "little"),
                                            9, True, True)
    assert rsp.step(beat_taken=True)[1] is None and rsp.outstanding == 0
    with pytest.raises(AssertionError):
        rsp.step(beat_taken=True)


# -- DMA port drivers in the Amaranth simulator ---------------------------------------------

class DmaStandIn(wiring.Component):
    """Issues the DMA reads and writes it is built with, as fast as the ports allow;
    ``rd_ready`` is the data stream's ready (driven by the test)."""

    def __init__(self, width, reads, writes, glitch=False):
        self.width = width
        self.glitch = glitch          # drop req.valid every other cycle: breaks the rule
        self.reads = reads            # [(addr, length, tag)]
        self.writes = writes          # [(addr, bytes)]
        super().__init__({
            "dma_rd":   Out(DmaRead(width)),
            "dma_wr":   Out(DmaWrite(width)),
            "rd_ready": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        nbytes = self.width // 8
        rd_req = [{"addr": a, "length": n, "tag": t} for a, n, t in self.reads]
        wr_cmd = [{"addr": a, "length": len(d)} for a, d in self.writes]
        wr_beats = []
        for _, payload in self.writes:
            count = max(1, -(-len(payload) // nbytes))
            for i in range(count):
                chunk = payload[i * nbytes:(i + 1) * nbytes]
                wr_beats.append({"data": int.from_bytes(chunk, "little"),
                                 "last": i == count - 1})

        def issue(stream, table):
            layout = data.Layout.cast(stream.payload.shape())
            index = Signal(range(len(table) + 1))
            rom = Array(Const(layout.const(row).as_bits(), layout.size) for row in table + [{}])
            m.d.comb += [stream.valid.eq(index < len(table)),
                         stream.payload.eq(rom[index])]
            with m.If(stream.valid & stream.ready):
                m.d.sync += index.eq(index + 1)

        issue(self.dma_rd.req, rd_req)
        if self.glitch:
            toggle = Signal()
            m.d.sync += toggle.eq(~toggle)
            with m.If(toggle):
                m.d.comb += self.dma_rd.req.valid.eq(0)
        issue(self.dma_wr.cmd, wr_cmd)
        issue(self.dma_wr.data, wr_beats)
        m.d.comb += self.dma_rd.data.ready.eq(self.rd_ready)
        return m


def run_dma(width, reads, writes, memory, settings, *, cfg_values=None, rd_stall=0.0,
            max_cycles=20000, glitch=False):
    """Simulate the stand-in with the drivers; return what the monitor saw: requests
    [(cycle, addr, length, tag)], beats [(cycle, data, tag, last, error)]."""
    dut = DmaStandIn(width, reads, writes, glitch)
    cfg = None
    if cfg_values is not None:
        cfg = PcieConfig().create(path=("cfg",))
    dma = AmaranthDma(dut.dma_rd, dut.dma_wr, memory, settings, cfg=cfg)
    seen = {"requests": [], "beats": []}
    rng = random.Random(width)

    async def testbench(ctx):
        if cfg is not None:
            ctx.set(cfg.max_payload_size, cfg_values[0])
            ctx.set(cfg.max_read_request_size, cfg_values[1])
        ctx.set(dut.rd_ready, 1)
        held = None                                  # a beat offered and not taken
        req, rdata = dut.dma_rd.req, dut.dma_rd.data
        for cycle in range(max_cycles):
            _, _, rv, rr, rp, dv, dr, dp = await ctx.tick().sample(
                req.valid, req.ready, req.payload, rdata.valid, rdata.ready, rdata.payload)
            beat = (dp.data, dp.tag, dp.last, dp.error)
            if held is not None:                     # stream rule: hold until taken
                assert dv and beat == held, f"cycle {cycle}: offered beat withdrawn"
            held = beat if dv and not dr else None
            if rv and rr:
                seen["requests"].append((cycle, rp.addr, rp.length, rp.tag))
            if dv and dr:
                seen["beats"].append((cycle, *beat))
            ctx.set(dut.rd_ready, not rng.random() < rd_stall)
            done_reads = sum(1 for b in seen["beats"] if b[3])
            if done_reads == len(reads) and dma.write.sink.commands == len(writes) \
                    and dma.write.sink.idle:
                break
        else:
            raise AssertionError("DMA traffic did not finish")
        await ctx.tick().repeat(4)

    sim = Simulator(dut)
    sim.add_clock(4e-9)
    for process in dma.processes():
        sim.add_process(process)
    sim.add_testbench(testbench)
    sim.run()
    return seen


def split_beats(beats):
    """Per request, its beats, by the ``last`` flags."""
    out, current = [], []
    for beat in beats:
        current.append(beat)
        if beat[3]:
            out.append(current)
            current = []
    assert current == []
    return out


@pytest.mark.parametrize("settings", ["fast", "busy"])
@pytest.mark.parametrize("width", [64, 256, 512])
def test_dma_drivers(width, settings):
    mem = HostMemory(max_payload_size=1, max_read_request_size=5)
    rng = random.Random(width)
    src = mem.alloc(3 * PAGE_SIZE, name="src")
    hi = mem.alloc(PAGE_SIZE, above_4g=True, name="hi")
    dst = mem.alloc(2 * PAGE_SIZE, name="dst")
    mem.write(src, rng.randbytes(3 * PAGE_SIZE))
    mem.write(hi, rng.randbytes(PAGE_SIZE))
    reads = [(src, 64, 0), (src + 3, 1, 1), (src + PAGE_SIZE, PAGE_SIZE, 2),
             (hi + 100, 77, 3), (src + 2 * PAGE_SIZE + 4, 200, 4), (src + 64, 64, 255)]
    msix_addr, msix_data = mem.msix_address(5)
    writes = [(dst, rng.randbytes(256)), (dst + 0x301, rng.randbytes(1)),
              (msix_addr, msix_data.to_bytes(4, "little")),
              (dst + PAGE_SIZE + 7, rng.randbytes(129)), (hi + 4, rng.randbytes(36))]
    expect_hi = bytearray(mem.read(hi, PAGE_SIZE))
    expect_hi[4:40] = writes[-1][1]
    seen = run_dma(width, reads, writes, mem, DMA_SETTINGS[settings],
                   rd_stall=0.3 if settings == "busy" else 0.0)
    mem.check()
    assert [r[1:] for r in seen["requests"]] == reads
    nbytes = width // 8
    for (addr, length, tag), beats in zip(reads, split_beats(seen["beats"]), strict=True):
        assert len(beats) == -(-length // nbytes)
        assert all(b[2] == tag and not b[4] for b in beats)
        raw = b"".join(b[1].to_bytes(nbytes, "little") for b in beats)
        assert raw[:length] == mem.read(addr, length)
    assert mem.read(dst, 256) == writes[0][1]
    assert mem.read(dst + 0x301, 1) == writes[1][1]
    assert mem.read(dst + PAGE_SIZE + 7, 129) == writes[3][1]
    assert mem.read(hi, PAGE_SIZE) == bytes(expect_hi)
    assert [(m.addr, m.data, m.vector) for m in mem.msix_messages] == [
        (msix_addr, msix_data, 5)]
    assert [w.addr for w in mem.writes] == [dst, dst + 0x301, dst + PAGE_SIZE + 7, hi + 4]
    assert [(r.addr, r.length) for r in mem.reads] == [(a, n) for a, n, _ in reads]


def test_dma_read_latency_and_stalls():
    """With nothing stalling, a read's first beat follows its request by exactly the set
    latency and beats stream back to back; with stalls, never sooner."""
    mem = HostMemory(max_read_request_size=5)
    buf = mem.alloc(PAGE_SIZE)
    reads = [(buf, 256, 1), (buf + 256, 64, 2), (buf + 512, 128, 3)]
    seen = run_dma(128, reads, [], mem, DmaSettings(read_latency=10))
    beats = split_beats(seen["beats"])
    assert beats[0][0][0] - seen["requests"][0][0] == 10
    cycles = [b[0] for b in seen["beats"]]
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles)))
    busy = DmaSettings(read_latency=10, read_req_stall=0.5, read_gap=0.5,
                       max_outstanding_reads=1, seed=3)
    seen = run_dma(128, reads, [], mem, busy, rd_stall=0.5)
    requests = seen["requests"]
    for req, beats in zip(requests, split_beats(seen["beats"]), strict=True):
        assert beats[0][0] - req[0] >= 10
    # max_outstanding_reads=1: the next request waits for the previous one's last beat.
    for req, prev in zip(requests[1:], split_beats(seen["beats"]), strict=False):
        assert req[0] >= prev[-1][0]
    mem.check()


@pytest.mark.parametrize("error_beats", ["all", "first", "last"])
def test_dma_read_errors(error_beats):
    mem = HostMemory(max_read_request_size=5)
    buf = mem.alloc(PAGE_SIZE)
    mem.fail_reads((buf + 1024, buf + 1025), count=1)
    reads = [(buf, 128, 1), (buf + 1000, 100, 2), (buf + 1000, 100, 3), (buf + 2048, 8, 4)]
    seen = run_dma(256, reads, [], mem, DmaSettings(read_latency=2,
                                                   read_error_beats=error_beats))
    per_read = split_beats(seen["beats"])
    flags = [[b[4] for b in beats] for beats in per_read]
    assert flags[0] == [False, False, False, False] and flags[2] == [False, False, False, False]
    assert flags[1] == {"all": [1, 1, 1, 1], "first": [1, 0, 0, 0], "last": [0, 0, 0, 1]}[
        error_beats]
    assert flags[3] == [False]
    raw = b"".join(b[1].to_bytes(32, "little") for b in per_read[1])
    assert raw[:100] == bytes([POISON_BYTE]) * 100
    assert [r.error for r in mem.reads] == [False, True, False, False]
    mem.check()


def test_dma_violations_use_the_cores_cfg():
    """Size limits come from the core's cfg inputs when the driver is given them."""
    mem = HostMemory(max_payload_size=5, max_read_request_size=5)
    buf = mem.alloc(2 * PAGE_SIZE)
    reads = [(buf, 128, 0), (buf, 256, 1), (buf + PAGE_SIZE - 8, 16, 2),
             (buf + 2 * PAGE_SIZE, 4, 3)]
    writes = [(buf, bytes(128)), (buf, bytes(129)), (buf + 3 * PAGE_SIZE, bytes(4))]
    seen = run_dma(64, reads, writes, mem, DMA_SETTINGS["fast"], cfg_values=(0, 0))
    got = [(v.op, v.kind, v.addr) for v in mem.take_violations()]
    assert sorted(got) == sorted([
        ("read", "mrrs", buf), ("read", "crosses-4k", buf + PAGE_SIZE - 8),
        ("read", "unmapped", buf + 2 * PAGE_SIZE),
        ("write", "mps", buf), ("write", "unmapped", buf + 3 * PAGE_SIZE)])
    assert [beats[0][4] for beats in split_beats(seen["beats"])] == [False, False, False, True]
    mem.check()


def test_write_sink_checks_beat_counts():
    """Each command is matched with the next beats up to ``last``; a count that does not
    fit the length is a violation."""
    mem = HostMemory(max_payload_size=5)
    buf = mem.alloc(PAGE_SIZE)
    sink = WriteSink(mem, 64, DmaSettings(write_data_after_cmd=True))
    assert sink.step() == (True, False)            # no command yet: no data accepted
    assert sink.step(cmd=(buf, 8)) == (True, True)
    sink.step(beat=(0x1122, False))
    sink.step(beat=(0x3344, True))                 # two beats for 8 bytes
    assert sink.idle and mem.read(buf, 8) == (0x1122).to_bytes(8, "little")
    sink.step(cmd=(buf + 8, 9))
    sink.step(beat=(1, True))                      # one beat for 9 bytes
    assert [(v.kind, v.detail) for v in mem.take_violations()] == [
        ("beats", "2 data beats, expected 1"), ("beats", "1 data beats, expected 2")]
    free = WriteSink(mem, 64, DmaSettings())
    assert free.step() == (True, True)             # independent streams
    free.step(beat=(0xAB, True))
    assert not free.idle
    free.step(cmd=(buf + 100, 1))
    assert free.idle and mem.read(buf + 100, 1) == b"\xab"
    mem.check()


# -- Host driver against a fake transport ------------------------------------------------------
#
# The fake decodes commands with the bit positions typed from the NVMe 1.4 figures here, not
# with the driver's layouts, so that a wrong layout in the driver shows.

def run(coro):
    return asyncio.run(coro)


class FakeController(HostMemoryTransport):
    """Answers BAR0 from a dict and executes every new command each time the host waits
    (so the host has to poll). ``reverse`` posts each batch's completions last first."""

    def __init__(self, *, mqes=63, to=1, max_io_queues=8, ready_delay=2, reverse=False):
        super().__init__(HostMemory(max_payload_size=5, max_read_request_size=5))
        cap = Cap.const({"mqes": mqes, "cqr": 1, "to": to, "css": 1}).as_bits()
        self.dwords = {Reg.CAP: cap & 0xFFFF_FFFF, Reg.CAP + 4: cap >> 32, Reg.CC: 0,
                       Reg.CSTS: 0, Reg.VS: 0x10400}
        self.max_io_queues = max_io_queues
        self.ready_delay = ready_delay
        self.reverse = reverse
        self.stalled = False
        self.bad_cid = False
        self.countdown = None              # waits until CSTS changes
        self.next_csts = None
        self.mmio = []                     # ("r" | "w", offset, value, size)
        self.pci = []
        self.msix = {}                     # vector -> [addr lo, addr hi, data, ctrl]
        self.commands = []                 # (qid, Sqe const)
        self.sq, self.cq = {}, {}
        self.posted = []                   # (cqid, slot, phase, sqid, cid)
        self.held_aers = []
        self.features = {}
        self.waits = 0

    # BAR0
    async def mmio_read(self, offset, size=4):
        value = self.dwords.get(offset, 0)
        if size == 8:
            value |= self.dwords.get(offset + 4, 0) << 32
        self.mmio.append(("r", offset, value, size))
        return value

    async def mmio_write(self, offset, value, size=4):
        self.mmio.append(("w", offset, value, size))
        for i in range(size // 4):
            self._dword_write(offset + 4 * i, value >> (32 * i) & 0xFFFF_FFFF)

    def _dword_write(self, offset, value):
        if DOORBELL_BASE <= offset < MSIX_TABLE_BASE:
            qid, is_cq = divmod((offset - DOORBELL_BASE) // 4, 2)
            queue = (self.cq if is_cq else self.sq)[qid]
            assert value < queue["size"], f"doorbell value {value} beyond queue {qid}"
            queue["head" if is_cq else "tail"] = value
        elif MSIX_TABLE_BASE <= offset < MSIX_TABLE_BASE + 0x1000:
            vector, rem = divmod(offset - MSIX_TABLE_BASE, 16)
            self.msix.setdefault(vector, [0, 0, 0, 1])[rem // 4] = value
        elif offset == Reg.CC:
            old, self.dwords[Reg.CC] = self.dwords[Reg.CC], value
            if not old & 1 and value & 1:
                aqa = self.dwords.get(Reg.AQA, 0)
                asq = self.dwords.get(Reg.ASQ, 0) | self.dwords.get(Reg.ASQ + 4, 0) << 32
                acq = self.dwords.get(Reg.ACQ, 0) | self.dwords.get(Reg.ACQ + 4, 0) << 32
                self.sq[0] = {"base": asq, "size": (aqa & 0xFFF) + 1, "head": 0, "tail": 0,
                              "cqid": 0}
                self.cq[0] = {"base": acq, "size": (aqa >> 16 & 0xFFF) + 1, "head": 0,
                              "tail": 0, "phase": 1, "iv": 0, "ien": 1}
                self._later(Csts.const({"rdy": 1}).as_bits())
            elif old & 1 and not value & 1:
                self.sq.clear()
                self.cq.clear()
                self._later(0)
            elif not old >> 14 & 3 and value >> 14 & 3:
                self._later(Csts.const({"rdy": 1, "shst": ShstState.COMPLETE}).as_bits())
        elif offset < DOORBELL_BASE:
            self.dwords[offset] = value

    def _later(self, csts):
        if self.ready_delay is not None:
            self.countdown, self.next_csts = self.ready_delay, csts

    async def pci_config(self, **bits):
        self.pci.append(bits)

    async def wait(self, us):
        self.waits += 1
        if self.countdown is not None:
            self.countdown -= 1
            if self.countdown <= 0:
                self.dwords[Reg.CSTS], self.countdown = self.next_csts, None
        if self.stalled:
            return
        for qid, sq in list(self.sq.items()):
            batch = []
            while sq["head"] != sq["tail"]:
                raw = self.memory.device_read(sq["base"] + 64 * sq["head"], 64)[0]
                sq["head"] = (sq["head"] + 1) % sq["size"]
                sqe = data.Layout.cast(Sqe).from_bits(int.from_bytes(raw, "little"))
                self.commands.append((qid, sqe))
                result = self._execute(qid, sqe)
                if result is not None:
                    batch.append((sq["cqid"], qid, sqe.cdw0.cid, sq["head"], *result))
            if self.reverse:
                # Out of order: SQHD is then the fetch head, which never moves backwards.
                batch = [(*c[:3], sq["head"], *c[4:]) for c in reversed(batch)]
            for completion in batch:
                self._post(*completion)

    def _post(self, cqid, sqid, cid, sqhd, dw0, sct=0, sc=0, dnr=0):
        cq = self.cq[cqid]
        assert (cq["tail"] + 1) % cq["size"] != cq["head"], f"CQ {cqid} overflows"
        cqe = Cqe.const({"dw0": dw0, "dw2": {"sqhd": sqhd, "sqid": sqid},
                         "cid": cid ^ 0x8000 if self.bad_cid else cid,
                         "status": {"p": cq["phase"], "sc": sc, "sct": sct, "dnr": dnr}})
        self.memory.device_write(cq["base"] + 16 * cq["tail"],
                                 cqe.as_bits().to_bytes(16, "little"))
        self.posted.append((cqid, cq["tail"], cq["phase"], sqid, cid))
        cq["tail"] += 1
        if cq["tail"] == cq["size"]:
            cq["tail"], cq["phase"] = 0, cq["phase"] ^ 1
        lo, hi, value, ctrl = self.msix.get(cq["iv"], [0, 0, 0, 1])
        if cq["ien"] and not ctrl & 1:
            self.memory.device_write(lo | hi << 32, value.to_bytes(4, "little"))

    def _send(self, sqe, payload):
        """Write ``payload`` through PRP1 / PRP2 (at most two pages)."""
        first = min(len(payload), PAGE_SIZE - sqe.prp1 % PAGE_SIZE)
        self.memory.device_write(sqe.prp1, payload[:first])
        if first < len(payload):
            assert sqe.prp2 % PAGE_SIZE == 0
            self.memory.device_write(sqe.prp2, payload[first:])

    def _execute(self, qid, sqe):
        """(dw0, sct, sc, dnr), or None for a held command."""
        opc, cdw10, cdw11 = sqe.cdw0.opc, sqe.cdw10, sqe.cdw11
        if qid:
            return (sqe.cdw0.cid,)
        if opc == AdminOpcode.IDENTIFY.value:
            cns = cdw10 & 0xFF
            pages = {1: b"CTRL", 2: (1).to_bytes(4, "little") if sqe.nsid < 1 else b"",
                     3: b"DESC", 0: b"NAMESPACE"}
            if cns not in pages:
                return 0, 0, GenericStatus.INVALID_FIELD.value, 1
            if cns in (0, 3) and sqe.nsid != 1:
                return 0, 0, GenericStatus.INVALID_NAMESPACE.value, 1
            self._send(sqe, pages[cns].ljust(PAGE_SIZE, bytes([cns + 0x40 if cns != 2 else 0])))
            return (0,)
        if opc == AdminOpcode.GET_LOG_PAGE.value:
            numd = (cdw10 >> 16 | (cdw11 & 0xFFFF) << 16) + 1
            self._send(sqe, bytes([cdw10 & 0xFF]) * (4 * numd))
            return (0,)
        if opc == AdminOpcode.SET_FEATURES.value:
            fid = cdw10 & 0xFF
            self.features[fid] = cdw11
            if fid == 7:
                grant = min(self.max_io_queues, (cdw11 & 0xFFFF) + 1) - 1
                return (grant | grant << 16,)
            return (0,)
        if opc == AdminOpcode.GET_FEATURES.value:
            return (self.features.get(cdw10 & 0xFF, 0),)
        if opc == AdminOpcode.CREATE_IO_CQ.value:
            new = cdw10 & 0xFFFF
            if new in self.cq:
                return 0, 1, 0x01, 1
            self.cq[new] = {"base": sqe.prp1, "size": (cdw10 >> 16) + 1, "head": 0, "tail": 0,
                            "phase": 1, "iv": cdw11 >> 16, "ien": cdw11 >> 1 & 1}
            return (0,)
        if opc == AdminOpcode.CREATE_IO_SQ.value:
            self.sq[cdw10 & 0xFFFF] = {"base": sqe.prp1, "size": (cdw10 >> 16) + 1,
                                       "head": 0, "tail": 0, "cqid": cdw11 >> 16}
            return (0,)
        if opc == AdminOpcode.DELETE_IO_SQ.value:
            del self.sq[cdw10 & 0xFFFF]
            return (0,)
        if opc == AdminOpcode.DELETE_IO_CQ.value:
            del self.cq[cdw10 & 0xFFFF]
            return (0,)
        if opc == AdminOpcode.ABORT.value:
            return (1,)
        if opc == AdminOpcode.ASYNC_EVENT_REQ.value:
            self.held_aers.append(sqe.cdw0.cid)
            return None
        return 0, 0, GenericStatus.INVALID_OPCODE.value, 1

    def admin_commands(self):
        return [(s.cdw0.opc, s.nsid, s.cdw10, s.cdw11) for q, s in self.commands if q == 0]

    def writes_to(self, offset):
        return [v for op, off, v, _ in self.mmio if op == "w" and off == offset]


def new_host(fake, **kwargs):
    """A host whose waits are short, so that a broken driver fails fast."""
    return NvmeHost(fake, **{"command_timeout_us": 2000, **kwargs})


def brought_up(fake, **kwargs):
    """A host that has brought ``fake`` up, the AER already fetched by the fake."""
    host = new_host(fake)
    run(host.bring_up(**kwargs))
    run(fake.wait(1))
    return host


def test_bring_up_follows_linux():
    fake = FakeController(max_io_queues=8)
    host = new_host(fake)
    assert run(host.bring_up(io_queues=3, queue_entries=8)) == 3
    run(fake.wait(1))                          # the controller fetches the AER
    op = AdminOpcode
    entries = 8 - 1
    assert fake.admin_commands() == [
        (op.IDENTIFY.value, 0, 0x01, 0),
        (op.IDENTIFY.value, 0, 0x06, 0),                          # CSI 0 (NVM)
        (op.IDENTIFY.value, 0, 0x02, 0),
        (op.IDENTIFY.value, 1, 0x03, 0),
        (op.IDENTIFY.value, 1, 0x00, 0),
        (op.SET_FEATURES.value, 0, 0x07, 2 | 2 << 16),
        (op.CREATE_IO_CQ.value, 0, 1 | entries << 16, 0b11 | 1 << 16),   # PC, IEN, IV 1
        (op.CREATE_IO_SQ.value, 0, 1 | entries << 16, 0b1 | 1 << 16),    # PC, CQID 1
        (op.CREATE_IO_CQ.value, 0, 2 | entries << 16, 0b11 | 2 << 16),
        (op.CREATE_IO_SQ.value, 0, 2 | entries << 16, 0b1 | 2 << 16),
        (op.CREATE_IO_CQ.value, 0, 3 | entries << 16, 0b11 | 3 << 16),
        (op.CREATE_IO_SQ.value, 0, 3 | entries << 16, 0b1 | 3 << 16),
        (op.ASYNC_EVENT_REQ.value, 0, 0, 0),
    ]
    # Register programming, in order: disable, MSI-X table, admin queues, enable.
    writes = [(off, v) for o, off, v, _ in fake.mmio if o == "w" and off < DOORBELL_BASE]
    assert writes[0] == (Reg.CC, 0)
    asq, acq = host.sqs[0].base, host.cqs[0].base
    assert writes[1:6] == [(Reg.AQA, 31 | 31 << 16), (Reg.ASQ, asq & 0xFFFF_FFFF),
                           (Reg.ASQ + 4, asq >> 32), (Reg.ACQ, acq & 0xFFFF_FFFF),
                           (Reg.ACQ + 4, acq >> 32)]
    # EN, CSS 0, MPS 0, AMS 0, SHN 0, IOSQES 6, IOCQES 4.
    assert writes[6:] == [(Reg.CC, 0x0046_0001)]
    first_aqa = next(i for i, m in enumerate(fake.mmio) if m[:2] == ("w", Reg.AQA))
    table = [m for m in fake.mmio[:first_aqa] if m[1] >= MSIX_TABLE_BASE]
    assert len(table) == 4 * 4
    for vector in range(4):
        addr, value = fake.msix_vector_address(vector)
        assert fake.msix[vector] == [addr & 0xFFFF_FFFF, addr >> 32, value, 0]
    assert fake.pci[0] == {"bus_master": True}
    assert fake.pci[1:] == [{"bus_master": True, "msix_enable": True,
                             "msix_function_mask": True}, {"msix_function_mask": False}]
    # CSTS was polled until ready, twice (after disable and after enable).
    assert sum(1 for o, off, *_ in fake.mmio if o == "r" and off == Reg.CSTS) >= 4
    assert host.id_ctrl.startswith(b"CTRL") and len(host.id_ctrl) == PAGE_SIZE
    assert host.nsids == [1] and host.id_ns[1].startswith(b"NAMESPACE")
    assert host.ns_descs[1].startswith(b"DESC")
    assert host.cs_ctrl_status.is_(GenericStatus.INVALID_FIELD, dnr=True)
    assert fake.held_aers == sorted(host.aer_cids) and len(fake.held_aers) == 1
    assert sorted(host.sqs) == sorted(host.cqs) == [0, 1, 2, 3]
    assert [host.cqs[q].vector for q in range(4)] == [0, 1, 2, 3]
    # Every admin completion raised vector 0 at the address the host programmed.
    assert fake.memory.interrupts(0) == 12 and len(fake.memory.msix_messages) == 12
    fake.memory.check()


def test_bring_up_takes_what_the_controller_grants():
    fake = FakeController(max_io_queues=2, mqes=3)
    host = new_host(fake)
    assert run(host.bring_up(io_queues=4, queue_entries=1024, vectors=2)) == 2
    creates = [(c[2], c[3]) for c in fake.admin_commands()
               if c[0] == AdminOpcode.CREATE_IO_CQ.value]
    # Queues sized min(entries, MQES + 1) = 4; queue 2 has no vector of its own: IV 0.
    assert creates == [(1 | 3 << 16, 0b11 | 1 << 16), (2 | 3 << 16, 0b11)]


@pytest.mark.parametrize("reverse", [False, True])
def test_io_queue_phase_tag_over_several_laps(reverse):
    fake = FakeController(reverse=reverse)
    host = brought_up(fake, io_queues=2, queue_entries=4)
    fake.memory.take_violations()

    async def traffic():
        done = []
        for _ in range(7):                       # 21 commands: over five laps of 4 slots
            cids = [await host.submit(2, {"cdw0": {"opc": NvmOpcode.FLUSH}, "nsid": 1})
                    for _ in range(3)]
            with pytest.raises(QueueFull):
                await host.submit(2, build_sqe(NvmOpcode.FLUSH, 0))
            for cid in reversed(cids):
                cqe = await host.wait_completion(2, cid)
                assert cqe.cid == cid and cqe.dw0 == cid and cqe.dw2.sqid == 2
                assert Status.of(cqe).ok
                done.append(cid)
        return done

    done = run(traffic())
    assert len(set(done)) == 21
    posted = [(slot, phase) for cqid, slot, phase, *_ in fake.posted if cqid == 2]
    assert posted == [(i % 4, 1 - (i // 4) % 2) for i in range(21)]
    assert fake.writes_to(host.doorbell(2)) == [(i + 1) % 4 for i in range(21)]
    heads = fake.writes_to(host.doorbell(2, cq=True))
    assert heads[-1] == 21 % 4 and len(heads) <= 21
    assert all((b - a) % 4 in (1, 2, 3) for a, b in zip([0] + heads, heads, strict=False))
    assert host.sqs[2].head == 21 % 4 and host.cqs[2].head == 21 % 4
    assert host.cqs[2].phase == 0                # five wraps
    assert [s.cdw0.opc for q, s in fake.commands if q == 2] == [NvmOpcode.FLUSH.value] * 21
    assert fake.memory.interrupts(2) == 21 and fake.memory.interrupts(1) == 0
    fake.memory.check()


def test_admin_helpers_encode_their_fields():
    fake = FakeController()
    host = brought_up(fake, io_queues=2, queue_entries=16)
    fake.commands.clear()

    async def helpers():
        cqe, page = await host.identify(Cns.CONTROLLER, page_offset=0x804)
        assert Status.of(cqe).ok and page.startswith(b"CTRL") and len(page) == PAGE_SIZE
        _, log_page = await host.get_log_page(0x02, numd=130, offset=(1 << 32) + 8, rae=True)
        assert log_page == b"\x02" * 520
        await host.set_features(FeatureId.ARBITRATION, 0x0302_0107, sv=True)
        assert (await host.get_features(FeatureId.ARBITRATION, sel=2)).dw0 == 0x0302_0107
        assert (await host.abort(1, 0x1234)).dw0 & 1
        with pytest.raises(CommandError) as err:
            await host.create_io_cq(1, 16)
        assert err.value.status == Status(1, 0x01, dnr=True)
        cqe = await host.create_io_cq(1, 16, check=False)
        assert Status.of(cqe).is_(CommandSpecificStatus.INVALID_QUEUE_IDENTIFIER, dnr=True)
        await host.delete_io_sq(2)
        await host.delete_io_cq(2)
        cqe, _ = await host.admin(0x7F)
        assert Status.of(cqe).is_(GenericStatus.INVALID_OPCODE)

    run(helpers())
    sqes = [s for _, s in fake.commands]
    ident = sqes[0]
    assert ident.prp1 % PAGE_SIZE == 0x804 and ident.prp2 == ident.prp1 - 0x804 + PAGE_SIZE
    assert (sqes[1].cdw10, sqes[1].cdw11, sqes[1].cdw12, sqes[1].cdw13) == (
        0x02 | 1 << 15 | 129 << 16, 0, 8, 1)
    assert sqes[1].nsid == 0xFFFF_FFFF and sqes[1].prp2 == 0
    assert (sqes[2].cdw10, sqes[2].cdw11) == (0x01 | 1 << 31, 0x0302_0107)
    assert sqes[3].cdw10 == 0x01 | 2 << 8
    assert sqes[4].cdw10 == 1 | 0x1234 << 16
    assert [s.cdw10 for s in sqes[7:9]] == [2, 2]
    assert 2 not in host.sqs and 2 not in host.cqs and 1 in host.cqs
    assert len({s.cdw0.cid for s in sqes}) == len(sqes)
    # The freed queue memory is gone: the controller may not touch it again.
    assert fake.memory.device_read(fake.sq.get(1)["base"], 64)[1] is False
    fake.memory.check()


def test_shutdown_and_disable():
    fake = FakeController()
    host = brought_up(fake, io_queues=2, queue_entries=8)
    fake.commands.clear()
    run(host.shutdown())
    assert [(s.cdw0.opc, s.cdw10) for _, s in fake.commands] == [
        (AdminOpcode.DELETE_IO_SQ.value, 1), (AdminOpcode.DELETE_IO_SQ.value, 2),
        (AdminOpcode.DELETE_IO_CQ.value, 1), (AdminOpcode.DELETE_IO_CQ.value, 2)]
    assert fake.writes_to(Reg.CC)[-1] == 0x0046_4001                # SHN = 01b
    assert fake.dwords[Reg.CSTS] >> 2 & 3 == ShstState.COMPLETE.value
    run(host.disable())
    assert fake.writes_to(Reg.CC)[-1] == 0x0046_0000
    assert fake.dwords[Reg.CSTS] == 0 and host.sqs == {} and host.cqs == {}
    fake.memory.check()


def test_timeouts_and_protocol_errors():
    fake = FakeController(to=0)
    host = new_host(fake, poll_us=10, command_timeout_us=1000)
    run(host.bring_up(io_queues=1, queue_entries=8))
    fake.stalled = True
    waits = fake.waits

    async def stalled():
        cid = await host.submit(1, build_sqe(NvmOpcode.FLUSH, 0))
        await host.wait_completion(1, cid)

    with pytest.raises(ControllerTimeout):
        run(stalled())
    assert fake.waits - waits == 100
    fake.stalled = False
    fake.bad_cid = True
    with pytest.raises(ProtocolError, match="CID"):
        run(stalled())
    # A controller that never becomes ready: CAP.TO = 0 bounds the wait to 500 ms.
    slow = FakeController(to=0, ready_delay=None)
    host = new_host(slow, poll_us=1000)
    with pytest.raises(ControllerTimeout):
        run(host.bring_up())
    assert 500 <= slow.waits <= 501


def test_interrupt_polling_and_status_decoding():
    fake = FakeController()
    host = new_host(fake)
    run(host.bring_up(io_queues=1, queue_entries=8))

    async def flow():
        assert await fake.wait_interrupt(0, timeout_us=5)        # admin completions
        assert not await fake.wait_interrupt(1, timeout_us=5)
        cid = await host.submit(1, build_sqe(NvmOpcode.FLUSH, 0))
        await host.wait_completion(1, cid)
        assert await fake.wait_interrupt(1, timeout_us=5)
        assert not await fake.wait_interrupt(1, timeout_us=5)

    run(flow())
    # Reserved status code types decode without the layout's enum.
    raw = Cqe.const({"cid": 3}).as_bits() | 4 << (96 + 16 + 9) | 0x81 << (96 + 16 + 1)
    status = Status.of(decode_cqe(raw.to_bytes(16, "little")))
    assert status == Status(4, 0x81) and not status.ok and str(status) == "4/81"


def test_stream_rule_catches_a_withdrawn_request():
    mem = HostMemory(max_read_request_size=5)
    buf = mem.alloc(PAGE_SIZE)
    reads = [(buf + 64 * i, 64, i) for i in range(8)]
    run_dma(64, reads, [], mem, DmaSettings(read_req_stall=0.7, seed=1))
    mem.check()
    run_dma(64, reads, [], mem, DmaSettings(read_req_stall=0.7, seed=1), glitch=True)
    found = mem.take_violations()
    assert found and {(v.kind, v.op) for v in found} == {("stream", "dma_rd.req")}
    assert "valid dropped before ready" in str(found[0])
    rule = StreamRule(mem, "s")
    for valid, ready, payload in [(1, 0, 5), (1, 0, 5), (1, 1, 5), (1, 0, 6), (1, 1, 7)]:
        rule.step(valid, ready, payload)
    assert [str(v) for v in mem.take_violations()] == ["s: payload changed before ready (edge 5)"]
