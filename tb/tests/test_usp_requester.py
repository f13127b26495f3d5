"""UspRequester (UltraScale+ RQ formatter) in the Amaranth simulator, its beats parsed by
the bench model :class:`nvmetb.usp.rq.RqParser`: every TLP compared whole with the one the
stimulus asked for, per kind in order; refused writes leave nothing; straddling packs two
reads per beat; writes stream one beat per cycle."""

import random

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from nvmecore.pcie.usp_layouts import ReqType
from nvmecore.pcie.usp_requester import UspRequester
from nvmetb.usp.rq import RqParser, RqTlp

pytestmark = pytest.mark.quick

CONFIGS = [pytest.param(256, False, id="256"), pytest.param(512, False, id="512"),
           pytest.param(512, True, id="512-straddle")]


# -- Stimulus ------------------------------------------------------------------------------

def read_tlp(addr, dwords, tag):
    return RqTlp(ReqType.MEM_READ, addr, dwords, tag, 0xF, 0xF if dwords > 1 else 0)


def write_tlp(addr, payload):
    n = len(payload) // 4
    return RqTlp(ReqType.MEM_WRITE, addr, n, 0, 0xF, 0xF if n > 1 else 0, payload)


def random_page(rng):
    """A 4 KiB page below or above 4 GiB."""
    return rng.choice([rng.randrange(1 << 20), rng.randrange(1 << 20, 1 << 52)]) << 12


def random_read(rng, tag):
    """(RqRead payload, expected TLP): 1..1024 DWs inside one page, 1024 given as 0 or
    1024 alike."""
    dwords = rng.choice([1, 2, rng.randrange(1, 17), rng.randrange(1, 1025), 1024])
    addr = random_page(rng) + 4 * rng.randrange(1024 - dwords + 1)
    field = 0 if dwords == 1024 and rng.random() < 0.5 else dwords
    return {"addr": addr, "dwords": field, "tag": tag}, read_tlp(addr, dwords, tag)


def random_write(rng, mps, longest=None):
    """(addr, length, payload, expected TLP or None when the adapter must refuse it), at
    most ``longest`` bytes (default ``mps``) unless it is refused for exceeding ``mps``."""
    kind = rng.choices(["ok", "unaligned", "odd length", "4k", "mps"], [12, 1, 1, 1, 1])[0]
    most = (longest or mps) // 4
    words = rng.choice([1, 2, rng.randrange(1, 9), rng.randrange(1, most + 1), most])
    words = min(words, most)
    page = random_page(rng)
    if kind == "ok":
        addr = page + 4 * rng.randrange(1024 - words + 1)
        length = 4 * words
    elif kind == "unaligned":
        addr, length = page + 4 * rng.randrange(1025 - words) + rng.randrange(1, 4), 4 * words
    elif kind == "odd length":
        addr, length = page + 4 * rng.randrange(1025 - words), 4 * words - rng.randrange(1, 4)
    elif kind == "4k":
        length = 4 * max(words, 2)        # maybe above mps too: refused all the same
        addr = page + 4096 - 4 * rng.randrange(1, length // 4)
    else:
        length = mps + 4 * rng.randrange(1, 64) if mps < 4096 else 4100
        addr = page + 4 * rng.randrange(64)
    payload = rng.randbytes(length)
    return addr, length, payload, write_tlp(addr, payload) if kind == "ok" else None


# -- Bench ---------------------------------------------------------------------------------

class Bench:
    """Drivers for ``rd``, ``wr.cmd``, ``wr.data`` and a sink on ``rq`` that parses and
    checks the AXI-stream rule (a beat once offered stays until taken). As the core does
    (DmaWrite), a write's data is offered only once its command has been taken."""

    def __init__(self, width, straddle, *, mps=1, seed=0, ready=1.0, gaps=0.0):
        self.dut = UspRequester(width, straddle=straddle)
        self.width = width
        self.mps = mps
        self.rng = random.Random(seed)
        self.ready = ready                  # probability of tready per cycle (or a list)
        self.gaps = gaps                    # probability of an idle cycle before an item
        self.parser = RqParser(width, straddle)
        self.reads, self.writes = [], []    # stimulus
        self.tlps, self.refused = [], 0     # results
        self.valid_cycles = []              # cycle numbers with tvalid high
        self.read_cycles = []               # cycle numbers of read TLPs taken
        self.cycles = 0
        self.drivers_done = 0
        self.cmds_taken = 0
        self.np_credits = lambda cycle: 15      # pcie_tfc_nph_av by cycle

    def expected(self):
        return ([t for _, t in self.reads], [t for *_, t in self.writes if t is not None],
                sum(t is None for *_, t in self.writes))

    def got(self):
        return ([t for t in self.tlps if t.req_type == ReqType.MEM_READ],
                [t for t in self.tlps if t.req_type == ReqType.MEM_WRITE], self.refused)

    async def _gap(self, ctx):
        while self.rng.random() < self.gaps:
            await ctx.tick()

    async def put(self, ctx, port, payload):
        await self._gap(ctx)
        ctx.set(port.payload, payload)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)

    def run(self, max_cycles=100_000):
        dut, bytes_per_beat = self.dut, self.width // 8
        n_tlps = len(self.expected()[0]) + len(self.expected()[1])

        async def drive_rd(ctx):
            for payload, _ in self.reads:
                await self.put(ctx, dut.rd, payload)
            self.drivers_done += 1

        async def drive_cmd(ctx):
            for addr, length, *_ in self.writes:
                await self.put(ctx, dut.wr.cmd, {"addr": addr, "length": length})
                self.cmds_taken += 1
            self.drivers_done += 1

        async def drive_data(ctx):
            for index, (_, length, payload, _) in enumerate(self.writes):
                while self.cmds_taken <= index:
                    await ctx.tick()
                beats = -(-length // bytes_per_beat)
                for i in range(beats):
                    chunk = payload[i * bytes_per_beat:(i + 1) * bytes_per_beat]
                    await self.put(ctx, dut.wr.data, {"data": int.from_bytes(chunk, "little"),
                                                      "last": i == beats - 1})
            self.drivers_done += 1

        async def sink(ctx):
            rq = dut.rq
            ctx.set(dut.max_payload_size, self.mps)
            ctx.set(dut.np_credits, self.np_credits(0))
            held = None
            tail = 8                        # cycles to watch once all is done
            async for _, _, valid, ready, tdata, tkeep, tlast, tuser, refused, idle in \
                    ctx.tick().sample(rq.tvalid, rq.tready, rq.tdata, rq.tkeep, rq.tlast,
                                      rq.tuser.as_value(), dut.refused, dut.idle):
                self.cycles += 1
                assert self.cycles < max_cycles, "no progress"
                beat = (tdata, tkeep, tlast, tuser)
                assert held is None or (valid and beat == held), "rq changed before tready"
                held = beat if valid and not ready else None
                self.refused += refused
                if valid:
                    self.valid_cycles.append(self.cycles)
                else:
                    self.parser.gap()
                if valid and ready:
                    done = self.parser.feed(
                        {"tdata": tdata, "tkeep": tkeep, "tlast": tlast, "tuser": tuser})
                    self.read_cycles += [self.cycles for t in done
                                         if t.req_type == ReqType.MEM_READ]
                    self.tlps += done
                if self.drivers_done == 3 and len(self.tlps) >= n_tlps and idle:
                    tail -= 1
                    if tail == 0:
                        return
                ctx.set(dut.np_credits, self.np_credits(self.cycles))
                if isinstance(self.ready, list):
                    p = self.ready[self.cycles % len(self.ready)]
                else:
                    p = self.rng.random() < self.ready
                ctx.set(rq.tready, p)

        sim = Simulator(dut)
        sim.add_clock(4e-9)
        for testbench in (sink, drive_rd, drive_cmd, drive_data):
            sim.add_testbench(testbench)
        sim.run()
        assert not self.parser.in_tlp


# -- Tests ---------------------------------------------------------------------------------

def test_parameters_checked():
    with pytest.raises(ValueError):
        UspRequester(256, straddle=True)
    with pytest.raises(ValueError):
        UspRequester(128)


@pytest.mark.parametrize("ready, gaps", [(0.7, 0.3), (0.3, 0.0)], ids=["gaps", "stalls"])
@pytest.mark.parametrize("width, straddle", CONFIGS)
def test_random_traffic(width, straddle, ready, gaps):
    """Reads and writes (some to refuse) with idle gaps on the inputs and random tready:
    every TLP exact, each kind in order, one refused pulse per bad write."""
    mps = {256: 1, 512: 2}[width] if not straddle else 3      # 1024 B, the largest
    bench = Bench(width, straddle, mps=mps, seed=width + straddle + int(10 * ready),
                  ready=ready, gaps=gaps)
    rng = bench.rng
    bench.reads = [random_read(rng, tag % 256) for tag in range(400)]
    bench.writes = [random_write(rng, 128 << mps) for _ in range(160)]
    if straddle:                 # short writes, so that many end in DWs 0..7
        bench.writes += [random_write(rng, 128 << mps, 16) for _ in range(120)]
        rng.shuffle(bench.writes)
    bench.run()
    assert bench.got() == bench.expected()
    if straddle:
        assert bench.parser.straddled > 50


@pytest.mark.parametrize("width, straddle", CONFIGS)
def test_reads_back_to_back(width, straddle):
    """Reads offered every cycle while the hard IP takes a beat every other cycle: with
    straddling two reads leave per beat, otherwise one."""
    bench = Bench(width, straddle, ready=[1, 0])
    rng = bench.rng
    bench.reads = [random_read(rng, tag) for tag in range(64)]
    bench.run()
    assert bench.got() == bench.expected()
    assert bench.parser.beats == (33 if straddle else 64)     # the first read goes alone


@pytest.mark.parametrize("width, straddle", CONFIGS)
def test_streaming(width, straddle):
    """tready always high: reads one per cycle, then writes one beat per cycle with no
    bubble; with straddling a write starts at DW 8 behind one ending in DWs 0..7."""
    bench = Bench(width, straddle, mps=1)
    rng = bench.rng
    bench.reads = [random_read(rng, tag) for tag in range(16)]
    bench.run()
    assert bench.got() == bench.expected()
    assert bench.valid_cycles == list(range(bench.valid_cycles[0], bench.valid_cycles[0] + 16))

    bench = Bench(width, straddle, mps=1)
    for i in range(12):                                  # 256 B each: 68 DWs with the header
        addr, payload = 0x1_0000_0000 + 0x1000 * i, bench.rng.randbytes(256)
        bench.writes.append((addr, 256, payload, write_tlp(addr, payload)))
    bench.run()
    assert bench.got() == bench.expected()
    cycles = bench.valid_cycles
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles))), "a bubble"
    dws = width // 32
    assert len(cycles) == (12 * 9 // 2 if straddle else 12 * -(-68 // dws))


@pytest.mark.parametrize("width, straddle", CONFIGS)
def test_round_robin(width, straddle):
    """Reads and writes both waiting all the time: the TLPs alternate, also when a read is
    straddled behind a write (32-byte writes end in DWs 0..7 of the next beat at 512
    bits). Two reads go first, while the first write's data is still being stored."""
    bench = Bench(width, straddle)
    rng = bench.rng
    bench.reads = [random_read(rng, tag) for tag in range(12)]
    for i in range(12):
        addr, payload = 0x8000_0000 + 0x1000 * i, rng.randbytes(32)
        bench.writes.append((addr, 32, payload, write_tlp(addr, payload)))
    bench.run()
    assert bench.got() == bench.expected()
    kinds = [t.req_type for t in bench.tlps]
    read, write = ReqType.MEM_READ, ReqType.MEM_WRITE
    assert kinds == [read, read] + [write, read] * 10 + [write, write]
    if straddle:
        # every write but the first and the last two (no read left to straddle with)
        assert bench.parser.straddled >= 10


def test_parser_rejects_malformed_beats():
    """The model asserts on a start inside a TLP and on a payload beyond dword_count."""
    read = ReqType.MEM_READ.value << 75 | 2 << 64       # a 2-DW read descriptor
    write = ReqType.MEM_WRITE.value << 75 | 1 << 64     # a 1-DW write descriptor
    parser = RqParser(256)
    beat = {"tdata": write | 0xAA << 128 | 0xBB << 160, "tkeep": 0x3F, "tlast": 1,
            "tuser": 0xF}
    with pytest.raises(AssertionError, match="longer"):
        parser.feed(beat)
    parser = RqParser(512, straddle=True)
    sop_twice = 0b11 << 20                          # two starts, both at DW 0
    with pytest.raises(AssertionError, match="pointers"):
        parser.feed({"tdata": read, "tkeep": 0xF, "tlast": 0, "tuser": sop_twice | 0xFF})
    parser = RqParser(512)
    assert parser.feed({"tdata": read, "tkeep": 0xF, "tlast": 1,
                        "tuser": 1 << 20 | 1 << 26 | 3 << 28 | 0xF0F}) == [
        RqTlp(ReqType.MEM_READ, 0, 2, 0, 0xF, 0xF)]


def test_verilog():
    text = verilog.convert(UspRequester(512, straddle=True), name="t", emit_src=False)
    assert "module t" in text


@pytest.mark.parametrize("width, straddle", CONFIGS)
def test_max_payload_back_to_back(width, straddle):
    """Writes of the largest payload (1024 B) offered back to back, as the core's I/O data
    will be: RQ carries them with no bubble, so store-and-forward costs no throughput
    beyond its latency."""
    bench = Bench(width, straddle, mps=3)
    for i in range(8):
        addr, payload = 0x2_0000_0000 + 0x1000 * i, bench.rng.randbytes(1024)
        bench.writes.append((addr, 1024, payload, write_tlp(addr, payload)))
    bench.run()
    assert bench.got() == bench.expected()
    cycles = bench.valid_cycles
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles))), "a bubble"
    assert len(cycles) <= 8 * -(-(4 + 256) // (width // 32))


@pytest.mark.parametrize("width, straddle", CONFIGS)
def test_reads_wait_for_np_credit(width, straddle):
    """[PG213 "Avoiding Head-of-Line Blocking for Posted Requests"] While the link partner
    has no non-posted header credit (pcie_tfc_nph_av 0) no read goes out, and writes pass
    the waiting reads; with one credit shown, at most one read leaves until the count has
    had two cycles to show it."""
    bench = Bench(width, straddle)
    rng = bench.rng
    bench.reads = [random_read(rng, tag) for tag in range(8)]
    for i in range(8):
        addr, payload = 0x8000_0000 + 0x1000 * i, rng.randbytes(64)
        bench.writes.append((addr, 64, payload, write_tlp(addr, payload)))
    bench.np_credits = lambda cycle: 0 if cycle < 200 else 1
    bench.run()
    assert bench.got() == bench.expected()
    kinds = [t.req_type for t in bench.tlps]
    assert kinds[:8] == [ReqType.MEM_WRITE] * 8, "a read went out without credit"
    read_beats = bench.read_cycles
    assert read_beats[0] > 200
    assert all(b - a >= 3 for a, b in zip(read_beats, read_beats[1:], strict=False)), \
        f"reads closer than the credit count can follow: {read_beats}"


@pytest.mark.parametrize("width, straddle", CONFIGS)
def test_write_latency(width, straddle):
    """A one-beat write offered as the CQ poster offers a CQ entry (its command, then its
    data beat the cycle after) with RQ ready: its TLP is on RQ two cycles after the data
    beat is taken (issue 10: SQ entry -> CQ entry latency)."""
    dut = UspRequester(width, straddle=straddle)

    async def bench(ctx):
        ctx.set(dut.max_payload_size, 1)
        ctx.set(dut.rq.tready, 1)
        ctx.set(dut.wr.cmd.payload, {"addr": 0x1000_0040, "length": 16})
        ctx.set(dut.wr.cmd.valid, 1)
        await ctx.tick().until(dut.wr.cmd.ready)
        ctx.set(dut.wr.cmd.valid, 0)
        ctx.set(dut.wr.data.payload, {"data": 0x1234_5678, "last": 1})
        ctx.set(dut.wr.data.valid, 1)
        assert ctx.get(dut.wr.data.ready)
        await ctx.tick()                                    # the data beat is taken
        ctx.set(dut.wr.data.valid, 0)
        cycles = 0
        while not ctx.get(dut.rq.tvalid):
            await ctx.tick()
            cycles += 1
            assert cycles < 10
        assert cycles + 1 == 2, f"RQ {cycles + 1} cycles after the data beat"
        tlp = RqParser(width, straddle).feed({
            "tdata": ctx.get(dut.rq.tdata), "tkeep": ctx.get(dut.rq.tkeep),
            "tlast": ctx.get(dut.rq.tlast), "tuser": ctx.get(dut.rq.tuser.as_value())})
        assert tlp == [write_tlp(0x1000_0040, (0x1234_5678).to_bytes(16, "little"))]

    sim = Simulator(dut)
    sim.add_clock(4e-9)
    sim.add_testbench(bench)
    sim.run()
