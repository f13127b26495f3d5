"""UltraScale+ read engine in the Amaranth simulator, against a host-memory model that
answers its read TLPs with RC completions built by :mod:`nvmetb.usp.rc`: split at RCB
boundaries, interleaved across tags, straddled, with gaps on RC and backpressure on the
data stream. Every delivered beat is checked (bytes, core tag, last, error, order), and so
are the engine's tags and completion budgets while it runs."""

import random
from dataclasses import dataclass, field

import pytest
from amaranth import Module, ResetInserter, Signal
from amaranth.back import verilog
from amaranth.sim import Simulator

from nvmecore.pcie.usp_layouts import CplStatus, RcErrorCode, straddle_segments
from nvmecore.pcie.usp_read import UspReadEngine
from nvmetb.usp.rc import (
    RcCompletion,
    error_completion,
    parse_rc_beats,
    rc_beats,
    split_completions,
)

pytestmark = pytest.mark.quick

HOST_BASE = 0x1_2345_0000           # above 4 GiB: the upper address bits matter
HOST_SIZE = 1 << 16


@dataclass
class Read:
    addr: int
    length: int
    core_tag: int
    fault: str | None = None        # None, "poisoned", "ur", "ca", "drop"
    late: bool = False              # with "drop": send the rest after the time-out
    # filled in by the bench
    tag: int | None = None          # PCIe tag of its TLP
    issued: int | None = None       # cycle of its TLP
    rest: list | None = None        # completions held back until after the time-out
    beats_seen: int = 0
    reserved: tuple = (0, 0)        # (ring rows, headers) reserved when it was sent


@dataclass
class Bench:
    """One engine, one host and the checks. Knobs: straddle (TLPs per RC beat), p_ready
    (data backpressure), p_rc_idle (gaps on RC), p_tlp_ready, latency (cycles from a TLP to
    its first completion), every_rcb (split at every RCB or at max payload 256 B)."""
    width: int
    straddle: int = 1
    seed: int = 0
    timeout: int = 3000
    tags_max: int = 256
    cpl_headers: int = 128
    cpl_bytes: int = 32768
    ext_tag: int = 1
    mrrs: int = 5
    p_ready: float = 0.7
    p_rc_idle: float = 0.2
    p_tlp_ready: float = 0.8
    p_req_gap: float = 0.3
    latency: tuple = (20, 120)
    every_rcb: bool = True
    rcb: int = 64                   # the root port's RCB, shown to the engine as rcb_128
    interleave: bool = True
    late_delay: int = 5             # cycles from a dropped read's time-out to its rest
    stats: dict = field(default_factory=lambda: {
        "max_tags": 0, "max_rows": 0, "max_hdrs": 0, "unexpected": 0, "rc_beats": 0,
        "rc_stalls": 0})

    def __post_init__(self):
        self.rc_cycles = []             # cycles of the RC beats taken
        self.rng = random.Random(self.seed)
        self.mem = self.rng.randbytes(HOST_SIZE)
        self.dut = UspReadEngine(self.width, self.timeout, tags_max=self.tags_max,
                                 cpl_headers=self.cpl_headers, cpl_bytes=self.cpl_bytes)
        self.beat_bytes = self.width // 8

    # -- the model's view of a request ---------------------------------------------------
    def malformed(self, rd):
        return (rd.addr % 4 or rd.length % 4 or rd.length == 0 or
                rd.length > 128 << min(self.mrrs, 5) or rd.addr % 4096 + rd.length > 4096)

    def beats_of(self, rd):
        return max(1, -(-rd.length // self.beat_bytes))

    def reservation(self, rd):
        rows = -(-rd.length // self.beat_bytes)
        hdrs = (rd.addr % self.rcb + rd.length + self.rcb - 1) // self.rcb
        return rows, hdrs

    def random_read(self, core_tag, max_len=4096):
        length = 4 * self.rng.randrange(1, max_len // 4 + 1)
        while True:
            addr = HOST_BASE + 4 * self.rng.randrange(0, (HOST_SIZE - length) // 4)
            if addr % 4096 + length <= 4096:
                return Read(addr, length, core_tag)

    # -- the completer ---------------------------------------------------------------------
    def answer(self, rd):
        """The completions for ``rd`` and how many to send before the rest (for drops)."""
        payload = self.mem[rd.addr - HOST_BASE:rd.addr - HOST_BASE + rd.length]
        cpls = split_completions(rd.tag, rd.addr, payload, every_rcb=self.every_rcb,
                                  rcb=self.rcb)
        if rd.fault == "poisoned":
            bad = self.rng.randrange(len(cpls))
            cpls[bad].poisoned = True
            cpls[bad].error_code = RcErrorCode.POISONED
        elif rd.fault in ("ur", "ca"):
            keep = self.rng.randrange(len(cpls))
            status = CplStatus.UR if rd.fault == "ur" else CplStatus.CA
            cpls = cpls[:keep] + [error_completion(rd.tag, rd.addr + rd.length - cpls[keep]
                                                   .byte_count, cpls[keep].byte_count, status)]
        elif rd.fault == "drop":
            return cpls, self.rng.randrange(len(cpls))
        return cpls, len(cpls)

    def run(self, reads, *, max_cycles=40000, on_cycle=None):
        dut, rng = self.dut, self.rng
        good = [rd for rd in reads if not self.malformed(rd)]
        limit = min(self.tags_max, 256 if self.ext_tag else 32)
        rows_max = self.cpl_bytes // self.beat_bytes
        state = {"done": False}

        async def testbench(ctx):
            ctx.set(dut.ext_tag_enable, self.ext_tag)
            ctx.set(dut.max_read_request_size, self.mrrs)
            ctx.set(dut.rcb_128, self.rcb == 128)
            to_send = list(reads)
            to_issue = list(good)           # the TLPs expected, in order
            to_deliver = list(reads)
            outstanding = {}                # tag -> Read, from TLP to last data beat
            queues = {}                     # tag -> [cycle ready, completions]
            late = []                       # (cycle, completions) after a time-out
            beats = []
            rows = hdrs = nbytes = 0
            cycle = 0
            while to_deliver:
                cycle += 1
                assert cycle < max_cycles, f"stuck: {len(to_deliver)} reads not delivered"
                # inputs
                req_valid = bool(to_send) and rng.random() >= self.p_req_gap
                ctx.set(dut.req.valid, req_valid)
                if to_send:
                    rd = to_send[0]
                    ctx.set(dut.req.payload, {"addr": rd.addr, "length": rd.length,
                                              "tag": rd.core_tag})
                tlp_ready = rng.random() < self.p_tlp_ready
                ctx.set(dut.tlp.ready, tlp_ready)
                data_ready = rng.random() < self.p_ready
                ctx.set(dut.data.ready, data_ready)
                if not beats:
                    beats = self.next_beats(queues, late, cycle)
                rc_valid = bool(beats) and rng.random() >= self.p_rc_idle
                ctx.set(dut.rc.tvalid, rc_valid)
                if rc_valid:
                    beat = beats[0]
                    ctx.set(dut.rc.tdata, beat["tdata"])
                    ctx.set(dut.rc.tkeep, beat["tkeep"])
                    ctx.set(dut.rc.tlast, beat["tlast"])
                    ctx.set(dut.rc.tuser.as_value(), beat["tuser"])
                # outputs, sampled before the edge
                req_ready = ctx.get(dut.req.ready)
                tlp_valid = ctx.get(dut.tlp.valid)
                tlp = ctx.get(dut.tlp.payload)
                data_valid = ctx.get(dut.data.valid)
                out = ctx.get(dut.data.payload)
                tready = ctx.get(dut.rc.tready)
                await ctx.tick()
                self.stats["unexpected"] += ctx.get(dut.unexpected)
                if on_cycle:
                    on_cycle(ctx, cycle)
                if req_valid and req_ready:
                    to_send.pop(0)
                if rc_valid and tready:
                    beats.pop(0)
                    self.stats["rc_beats"] += 1
                    self.rc_cycles.append(cycle)
                self.stats["rc_stalls"] += rc_valid and not tready
                if tlp_valid and tlp_ready:
                    rd = to_issue.pop(0)
                    assert (tlp.addr, tlp.dwords) == (rd.addr, rd.length // 4), "wrong TLP"
                    assert tlp.tag < limit, f"tag {tlp.tag} beyond {limit}"
                    assert tlp.tag not in outstanding, f"tag {tlp.tag} reused while outstanding"
                    # [PG213 "Tag Management"] a tag whose read timed out stays the hard IP's
                    # until its last completion comes in
                    held = {c.tag for _, cpls in late for c in cpls}
                    held |= {r.tag for r in to_deliver if r.rest}
                    assert tlp.tag not in held, f"tag {tlp.tag} reused while the IP holds it"
                    rd.tag = tlp.tag
                    outstanding[tlp.tag] = rd
                    r, h = rd.reserved = self.reservation(rd)
                    rows, hdrs, nbytes = rows + r, hdrs + h, nbytes + rd.length
                    assert rows <= rows_max and nbytes <= self.cpl_bytes, "ring over-reserved"
                    assert hdrs <= self.cpl_headers, "completion headers over-reserved"
                    assert len(outstanding) <= limit
                    self.stats["max_tags"] = max(self.stats["max_tags"], len(outstanding))
                    self.stats["max_rows"] = max(self.stats["max_rows"], rows)
                    self.stats["max_hdrs"] = max(self.stats["max_hdrs"], hdrs)
                    cpls, now = self.answer(rd)
                    queues[rd.tag] = [cycle + rng.randint(*self.latency), cpls[:now]]
                    if rd.late and cpls[now:]:
                        rd.rest, rd.issued = cpls[now:], cycle
                if data_valid and data_ready:
                    rd = to_deliver[0]
                    self.check_beat(rd, out)
                    rd.beats_seen += 1
                    if out.last:
                        to_deliver.pop(0)
                        if rd.tag is not None:
                            del outstanding[rd.tag]
                            queues.pop(rd.tag, None)
                            r, h = rd.reserved
                            rows, hdrs, nbytes = rows - r, hdrs - h, nbytes - rd.length
                self.send_late(to_deliver, late, cycle)
            assert not to_issue and not to_send
            # let late completions drain, then the engine must be idle
            for _ in range(200):
                if not beats:
                    beats = self.next_beats(queues, late, 10**9)
                ctx.set(dut.rc.tvalid, bool(beats))
                if beats:
                    ctx.set(dut.rc.tdata, beats[0]["tdata"])
                    ctx.set(dut.rc.tuser.as_value(), beats[0]["tuser"])
                tready = ctx.get(dut.rc.tready)
                await ctx.tick()
                self.stats["unexpected"] += ctx.get(dut.unexpected)
                if beats and tready:
                    beats.pop(0)
            ctx.set(dut.rc.tvalid, 0)
            assert ctx.get(dut.idle) == 1
            assert ctx.get(dut.data.valid) == 0
            state["done"] = True

        sim = Simulator(dut)
        sim.add_clock(4e-9)
        sim.add_testbench(testbench)
        sim.run()
        assert state["done"]

    def send_late(self, to_deliver, late, cycle):
        """The rest of a dropped read goes just after its time-out, which starts once it is
        the oldest read and ``timeout`` cycles after it was sent."""
        rd = to_deliver[0] if to_deliver else None
        if rd is not None and rd.rest and rd.issued is not None:
            late.append((max(rd.issued + self.timeout, cycle) + self.late_delay, rd.rest))
            rd.rest = None

    def next_beats(self, queues, late, cycle):
        """Some completions of the tags whose answers are due, interleaved at random (each
        tag's in order), as RC beats; late completions go alone."""
        for i, (due, cpls) in enumerate(late):
            if due <= cycle:
                del late[i]
                self.late_sent = getattr(self, "late_sent", 0) + len(cpls)
                return [b for cpl in cpls for b in rc_beats([cpl], self.width, 1)]
        ready = [tag for tag, (due, cpls) in queues.items() if due <= cycle and cpls]
        if not ready:
            return []
        if not self.interleave:         # the oldest read's answer, all of it
            batch, queues[ready[0]][1] = queues[ready[0]][1], []
            return rc_beats(batch, self.width, self.straddle)
        # The tag waiting longest goes first (then others at random): no tag starves
        # past the engine's time-out however many are outstanding, as no root complex
        # holds one read back for hundreds of cycles while it answers the others.
        batch = [queues[min(ready, key=lambda t: queues[t][0])][1].pop(0)]
        for _ in range(self.rng.randint(0, 5)):
            tag = self.rng.choice(ready)
            if queues[tag][1]:
                batch.append(queues[tag][1].pop(0))
        return rc_beats(batch, self.width, self.straddle)

    def check_beat(self, rd, out):
        bb = self.beat_bytes
        n = rd.beats_seen
        assert out.tag == rd.core_tag, "core tag"
        assert out.last == (n == self.beats_of(rd) - 1), f"last on beat {n}"
        bad = bool(self.malformed(rd)) or rd.fault is not None
        assert out.error == bad, f"error={out.error} for {rd}"
        if not bad:
            start = rd.addr - HOST_BASE + n * bb
            valid = min(bb, rd.length - n * bb)
            want = int.from_bytes(self.mem[start:start + valid], "little")
            assert out.data & ((1 << 8 * valid) - 1) == want, f"data of beat {n} of {rd}"


STRADDLES = [(256, 1), (256, 2), (512, 1), (512, 2), (512, 4)]


@pytest.mark.parametrize("width,straddle", STRADDLES)
def test_random_reads(width, straddle):
    """Random lengths and offsets, split at every RCB, interleaved and straddled."""
    bench = Bench(width, straddle, seed=width + straddle)
    reads = [bench.random_read(i % 256, max_len=1024) for i in range(60)]
    bench.run(reads)
    assert bench.stats["max_tags"] > 8, "reads did overlap"
    if straddle > 1:
        assert bench.stats["rc_stalls"] > 0, "pieces clashed on a bank at least once"


@pytest.mark.parametrize("width", [256, 512])
def test_full_rate(width):
    """No backpressure, no gaps, 256-byte completions of page-aligned reads, straddled:
    RC never waits and data leaves as fast as RC brings it."""
    straddle = straddle_segments("rc", width)
    bench = Bench(width, straddle, seed=3, p_ready=1.0, p_rc_idle=0.0, p_tlp_ready=1.0,
                  p_req_gap=0.0, every_rcb=False, interleave=False, latency=(30, 30))
    reads = [Read(HOST_BASE + 2048 * i, 512, i) for i in range(24)]
    valid_cycles = []

    def on_cycle(ctx, cycle):
        if ctx.get(bench.dut.data.valid):
            valid_cycles.append(cycle)

    bench.run(reads, on_cycle=on_cycle)
    assert bench.stats["rc_stalls"] == 0
    assert valid_cycles[-1] - valid_cycles[0] <= bench.stats["rc_beats"] + 4


@pytest.mark.parametrize("width", [256, 512])
def test_latency(width):
    """One read of an SQ entry (64 bytes) alone: its first data beat is offered 4 cycles
    after its last RC beat is taken (the beat in SL, S2 writing the ring, the delivery
    decision's register, the ring's read register), the beats after it one a cycle
    (issue 10: SQ entry -> CQ entry latency)."""
    bench = Bench(width, 1, seed=5, p_ready=1.0, p_rc_idle=0.0, p_tlp_ready=1.0,
                  p_req_gap=0.0, latency=(10, 10))
    valid_cycles = []

    def on_cycle(ctx, cycle):             # (after the edge that ends ``cycle``)
        if ctx.get(bench.dut.data.valid):
            valid_cycles.append(cycle + 1)

    bench.run([Read(HOST_BASE + 0x440, 64, 3)], on_cycle=on_cycle)
    beats = 64 * 8 // width
    assert len(valid_cycles) == beats
    assert valid_cycles == list(range(valid_cycles[0], valid_cycles[0] + beats))
    assert valid_cycles[0] - bench.rc_cycles[-1] == 4


@pytest.mark.parametrize("width", [256, 512])
def test_error_completions(width):
    """Poisoned, UR and CA answers fail their own read only."""
    bench = Bench(width, straddle_segments("rc", width), seed=11)
    reads = [bench.random_read(i) for i in range(24)]
    for i, fault in ((2, "poisoned"), (5, "ur"), (9, "ca"), (10, "poisoned"), (17, "ur"),
                     (23, "ca")):
        reads[i].fault = fault
    bench.run(reads)


@pytest.mark.parametrize("width", [256, 512])
def test_timeout(width):
    """A read never (fully) answered ends with error after the engine's time-out; later
    reads are fine; its completions arriving late still belong to its tag (the hard IP
    holds it until they end the read): taken, their data dropped, not unexpected."""
    bench = Bench(width, 2, seed=21, timeout=400, latency=(10, 40))
    reads = [bench.random_read(i, max_len=512) for i in range(24)]
    for i in (3, 12):           # long enough to be still on its way out when the rest comes
        reads[i] = Read(HOST_BASE + 0x1000 * i // 3, 2048, i, fault="drop", late=True)
    bench.run(reads)
    assert bench.late_sent > 0
    assert bench.stats["unexpected"] == 0


def test_timeout_tag_held():
    """Round robin waits at the tag of a timed-out read until the hard IP ends it (its
    late completions), with 32 tags wrapping several times meanwhile."""
    # (RC at full rate: 32 reads of up to 256 B in flight must be answered within the short
    # time-out, or a read the host model answers late times out too, legitimately.)
    bench = Bench(256, 1, seed=23, timeout=300, ext_tag=0, latency=(10, 40), late_delay=1500,
                  p_rc_idle=0.0, p_ready=1.0)
    reads = [bench.random_read(i % 256, max_len=256) for i in range(120)]
    reads[2] = Read(HOST_BASE + 0x2000, 512, 2, fault="drop", late=True)
    bench.run(reads)
    assert bench.late_sent > 0
    assert bench.stats["unexpected"] == 0


def test_unexpected_tag():
    """A completion for a tag never issued is dropped and pulses ``unexpected``."""
    bench = Bench(256, 1, seed=5)
    stray = rc_beats([RcCompletion(tag=77, lower_address=0, byte_count=64,
                                   payload=bytes(64), request_done=True)], 256)
    original = bench.next_beats
    sent = []

    def next_beats(queues, late, cycle):
        if not sent and cycle > 5:
            sent.append(1)
            return list(stray)
        return original(queues, late, cycle)

    bench.next_beats = next_beats
    bench.run([bench.random_read(i, max_len=256) for i in range(4)])
    assert bench.stats["unexpected"] == 1


@pytest.mark.parametrize("width", [256, 512])
def test_malformed_requests(width):
    """Unaligned, odd-length, empty, too long for MRRS, crossing 4 KiB: error beats, in
    order, and no TLP (the bench checks every TLP against the well-formed reads)."""
    bench = Bench(width, 1, seed=31, mrrs=2)                         # 512 B
    reads = [bench.random_read(i, max_len=512) for i in range(12)]
    reads[1] = Read(HOST_BASE + 2, 64, 101)                          # unaligned address
    reads[3] = Read(HOST_BASE + 64, 62, 103)                         # not whole DWORDs
    reads[4] = Read(HOST_BASE + 64, 0, 104)                          # empty
    reads[6] = Read(HOST_BASE + 0x1000, 1024, 106)                   # over MRRS
    reads[8] = Read(HOST_BASE + 0x1FC0, 128, 108)                    # crosses 4 KiB
    reads[9] = Read(HOST_BASE + 0x1000, 8188, 109)                   # far too long
    assert all(bench.malformed(reads[i]) for i in (1, 3, 4, 6, 8, 9))
    bench.run(reads)


@pytest.mark.parametrize("ext_tag,tags_max,limit", [(0, 256, 32), (1, 256, 256), (1, 64, 64)])
def test_tag_limit(ext_tag, tags_max, limit):
    """Small reads answered late: the engine fills the tag space and no further (the bench
    checks every tag against the limit and against the tags outstanding)."""
    bench = Bench(256, 2, seed=41, ext_tag=ext_tag, tags_max=tags_max, latency=(300, 400),
                  p_ready=1.0, p_req_gap=0.0, p_tlp_ready=1.0, cpl_headers=512,
                  cpl_bytes=65536)
    reads = [bench.random_read(i % 256, max_len=64) for i in range(limit + 40)]
    for rd in reads:            # one RCB block each, so only tags limit
        rd.addr -= rd.addr % 64
        rd.length = 64
    bench.run(reads)
    assert bench.stats["max_tags"] == limit


@pytest.mark.parametrize("limit, rcb", [("rows", 64), ("headers", 64), ("headers", 128)])
def test_budgets(limit, rcb):
    """Reads answered late fill the ring (1 KiB reads, 8 KiB ring) or the completion
    headers exactly, never more: 256 B reads at offset 32 span 5 blocks of a 64 B RCB
    (16 reads fill 80 headers) or 3 of a 128 B RCB (26 reads: 78 of 80 headers; the
    completer splits at 128 B boundaries only)."""
    if limit == "rows":
        bench = Bench(256, 2, seed=51, cpl_headers=256, cpl_bytes=8192, latency=(150, 200))
        length, offset = 1024, 0
    else:
        bench = Bench(256, 2, seed=52, cpl_headers=80, latency=(150, 200), rcb=rcb)
        length, offset = 256, 32
    reads = [Read(HOST_BASE + 1024 * i + offset, length, i) for i in range(40)]
    bench.run(reads)
    per_read = 5 if rcb == 64 else 3
    assert bench.stats["max_rows"] == (8192 // 32 if limit == "rows" else
                                       80 // per_read * 8)
    assert bench.stats["max_hdrs"] == (8 * 16 if limit == "rows" else
                                       80 // per_read * per_read)


def test_rcb_change_waits_for_reads():
    """The RCB going from 128 B to 64 B while reads are outstanding: reads sent under
    128 B may be answered in 128 B pieces only, so a read is sent under 64 B (5 headers
    for 256 B at offset 32, not 3) only once all of them have been delivered: the
    bench's count at each read's own RCB stays within the 80 headers throughout."""
    bench = Bench(256, 2, seed=53, cpl_headers=80, latency=(150, 200), rcb=128)
    reads = [Read(HOST_BASE + 1024 * i + 32, 256, i) for i in range(60)]
    switched = {}

    def on_cycle(ctx, cycle):
        if cycle == 100:
            ctx.set(bench.dut.rcb_128, 0)
            bench.rcb = 64              # reads reserved from now on: at 64 B
            switched["outstanding"] = bench.stats["max_hdrs"]
    bench.run(reads, on_cycle=on_cycle)
    assert switched["outstanding"] == 78            # 26 reads under 128 B when it changed


def test_reset_clears():
    """The sync reset (function-level reset) drops everything outstanding."""
    rst = Signal()
    dut = UspReadEngine(256, 1000)
    top = Module()
    top.submodules.dut = ResetInserter(rst)(dut)

    async def testbench(ctx):
        ctx.set(dut.ext_tag_enable, 1)
        ctx.set(dut.max_read_request_size, 5)
        ctx.set(dut.tlp.ready, 1)
        for i in range(5):
            ctx.set(dut.req.valid, 1)
            ctx.set(dut.req.payload, {"addr": 0x1000 * i, "length": 256, "tag": i})
            await ctx.tick()
        ctx.set(dut.req.valid, 0)
        await ctx.tick().repeat(3)
        assert ctx.get(dut.idle) == 0
        ctx.set(rst, 1)
        await ctx.tick()
        ctx.set(rst, 0)
        assert ctx.get(dut.idle) == 1 and ctx.get(dut.data.valid) == 0
        ctx.set(dut.req.valid, 1)
        ctx.set(dut.req.payload, {"addr": 0x2000, "length": 64, "tag": 9})
        tags = []
        for _ in range(4):
            if ctx.get(dut.tlp.valid):
                tags.append(ctx.get(dut.tlp.payload.tag))
            await ctx.tick()
            ctx.set(dut.req.valid, 0)
        assert tags == [0], "tags restart at 0 after reset"

    sim = Simulator(top)
    sim.add_clock(4e-9)
    sim.add_testbench(testbench)
    sim.run()


def test_rc_model_round_trip():
    """The bench's RC beats read back to the same completions at every straddle."""
    rng = random.Random(61)
    for width, straddle in STRADDLES:
        cpls = []
        for tag in range(20):
            addr = 4 * rng.randrange(1 << 20)
            cpls += split_completions(tag, addr, rng.randbytes(4 * rng.randrange(1, 200)),
                                      every_rcb=rng.random() < 0.5)
        cpls.insert(5, error_completion(99, 0x100, 64, CplStatus.UR))
        beats = rc_beats(cpls, width, straddle)
        assert parse_rc_beats(beats, width) == cpls
        lanes = width // 32
        assert len(beats) >= sum(3 + c.dword_count for c in cpls) / lanes


@pytest.mark.parametrize("width", [256, 512])
def test_verilog(width):
    text = verilog.convert(UspReadEngine(width, 1000), name="t", emit_src=False)
    assert "module t" in text


def test_worst_case_completion_room():
    """The RC bench model's worst case for the hard IP's completion space: one header per
    64 B read completion boundary a read spans, each completion's data in 16 B credits
    plus a 16 B header credit [PG213 "Completion Space"; PCIe 4.0 §2.3.1.1]."""
    from nvmetb.dma.usp_ports import worst_case_room

    assert worst_case_room(0x1000, 4096) == (64, 64 * (16 + 64))
    assert worst_case_room(0x103C, 8) == (2, 2 * (16 + 16))      # 4 B either side of 0x40
    assert worst_case_room(0x1FFC, 4) == (1, 32)
    # a 128 B RCB: one header per 128 B block
    assert worst_case_room(0x1000, 4096, 128) == (32, 32 * (16 + 128))
    assert worst_case_room(0x1060, 64, 128) == (2, 2 * (16 + 32))   # 32 B either side of 0x80
