"""Blocks of the NVM I/O engine in the Amaranth simulator: the DWORD realigners, the PRP
walker and the DMA read arbiter, each on its own ports with random traffic and
backpressure, checked against a plain-Python reference."""

import random

import pytest
from amaranth.sim import Simulator

from nvmecore.nvme.dword_pack import DwordGather, DwordScatter
from nvmetb.amaranth_streams import Sink, Source

pytestmark = pytest.mark.quick


def run(dut, processes, until, cycles=20000):
    sim = Simulator(dut)
    sim.add_clock(4e-9)
    for process in processes:
        sim.add_process(process)

    async def watchdog(ctx):
        for _ in range(cycles):
            await ctx.tick()
            if until():
                return
        raise AssertionError(f"not done within {cycles} cycles")
    sim.add_testbench(watchdog)
    sim.run()


def words_to_beats(words, lanes):
    """DWORD list → beat integers, the last zero padded."""
    beats = []
    for i in range(0, len(words), lanes):
        chunk = words[i:i + lanes]
        beats.append(sum(w << (32 * j) for j, w in enumerate(chunk)))
    return beats


@pytest.mark.parametrize("width", [64, 256, 512])
@pytest.mark.parametrize("gap, stall", [(0, 0), (0.3, 0.4)])
def test_gather(width, gap, stall):
    """Reads of random DWORD counts, packed into commands; errors stick per command."""
    lanes = width // 32
    rng = random.Random(width * 7 + int(gap * 10))
    dut = DwordGather(width)
    reqs, beats, expected = [], [], []
    for _ in range(25):
        words, errored = [], False
        count = rng.randrange(1, 6)
        for r in range(count):
            n = rng.choice([1, 2, lanes, lanes + 1, rng.randrange(1, 4 * lanes + 3)])
            read = [rng.getrandbits(32) for _ in range(n)]
            bad = rng.random() < 0.1
            errored |= bad
            reqs.append({"dwords": n, "end": int(r == count - 1)})
            raw = words_to_beats(read, lanes)
            # Junk above the read's data in its last beat must not leak.
            junk = rng.getrandbits(width) & ~((1 << (32 * ((n - 1) % lanes + 1))) - 1)
            raw[-1] |= junk
            for i, value in enumerate(raw):
                beats.append({"data": value, "last": int(i == len(raw) - 1),
                              "error": int(bad and i == len(raw) - 1)})
            words += read
        out = words_to_beats(words, lanes)
        for i, value in enumerate(out):
            expected.append((value, int(i == len(out) - 1), errored))
    req_src = Source(dut.req, reqs, gap=gap, rng=random.Random(1))
    src = Source(dut.i, beats, gap=gap, rng=random.Random(2))
    sink = Sink(dut.o, stall=stall, rng=random.Random(3))
    run(dut, [req_src.process(), src.process(), sink.process()],
        lambda: len(sink.received) == len(expected))
    got = [(p.data.as_value().value if hasattr(p.data, "as_value") else int(p.data),
            int(p.last), bool(p.error)) for p in sink.received]
    for i, (g, w) in enumerate(zip(got, expected, strict=True)):
        assert g[:2] == w[:2], f"beat {i}: got {g[0]:#x} last {g[1]}, want {w[0]:#x} last {w[1]}"
        if w[1]:
            assert g[2] == w[2], f"beat {i}: error flag {g[2]}, want {w[2]}"


@pytest.mark.parametrize("width", [64, 256, 512])
@pytest.mark.parametrize("gap, stall", [(0, 0), (0.3, 0.4)])
def test_scatter(width, gap, stall):
    """A contiguous stream cut into writes of random lengths, each packed from bit 0."""
    lanes = width // 32
    rng = random.Random(width + int(stall * 10))
    dut = DwordScatter(width)
    stream_words, writes = [], []
    for _ in range(12):
        total = lanes * rng.randrange(1, 12)          # a command: whole beats
        words = [rng.getrandbits(32) for _ in range(total)]
        at = 0
        while at < total:
            n = min(total - at, rng.choice([1, lanes - 1 or 1, lanes, rng.randrange(1, 3 * lanes)]))
            writes.append(words[at:at + n])
            at += n
        stream_words += words
    beats = [{"data": v, "last": 0} for v in words_to_beats(stream_words, lanes)]
    expected = []
    for w in writes:
        out = words_to_beats(w, lanes)
        expected += [(v, int(i == len(out) - 1)) for i, v in enumerate(out)]
    wr_src = Source(dut.wr, [{"dwords": len(w)} for w in writes], gap=gap, rng=random.Random(4))
    src = Source(dut.i, beats, gap=gap, rng=random.Random(5))
    sink = Sink(dut.o, stall=stall, rng=random.Random(6))
    run(dut, [wr_src.process(), src.process(), sink.process()],
        lambda: len(sink.received) == len(expected))
    mask_of = {}
    for w in writes:
        out = words_to_beats(w, lanes)
        for i in range(len(out)):
            valid = min(lanes, len(w) - i * lanes)
            mask_of[len(mask_of)] = (1 << (32 * valid)) - 1
    for i, (p, (value, last)) in enumerate(zip(sink.received, expected, strict=True)):
        got = int(p.data.as_value().value) if hasattr(p.data, "as_value") else int(p.data)
        assert got & mask_of[i] == value, f"beat {i}: {got:#x} != {value:#x}"
        assert int(p.last) == last, f"beat {i}: last {int(p.last)}, want {last}"


# -- PRP walker ----------------------------------------------------------------------------------

PAGE = 4096


def reference_prps(memory, prp1, prp2, length):
    """(status name, [(addr, bytes)]) by docs/io-commands.md "PRPs", reading lists from
    ``memory`` (a HostMemory: a failing read → TRANSFER_ERROR)."""
    if prp1 % 4:
        return "INVALID_PRP_OFFSET", []
    first = min(length, PAGE - prp1 % PAGE)
    pieces = [(prp1, first)]
    rem = length - first
    if rem == 0:
        return "OK", pieces
    if rem <= PAGE:
        if prp2 % PAGE:
            return "INVALID_PRP_OFFSET", pieces
        return "OK", pieces + [(prp2, rem)]
    if prp2 % 8:
        return "INVALID_PRP_OFFSET", pieces
    need = -(-rem // PAGE)
    page = prp2
    while True:
        in_page = (PAGE - page % PAGE) // 8
        chained = need > in_page
        count = in_page if chained else need
        raw, error = memory.device_read_quiet(page, 8 * count)
        if error:
            return "TRANSFER_ERROR", pieces
        entries = [int.from_bytes(raw[8 * i:8 * i + 8], "little") for i in range(count)]
        for i, entry in enumerate(entries):
            if entry % PAGE:
                return "INVALID_PRP_OFFSET", pieces
            if chained and i == count - 1:
                page = entry
                break
            pieces.append((entry, min(rem, PAGE)))
            rem -= min(rem, PAGE)
            need -= 1
        else:
            return "OK", pieces


class PrpLayoutMemory:
    """Host memory with data pages and PRP lists laid out for a job."""

    def __init__(self, rng):
        from nvmetb.hostmem import HostMemory
        self.mem = HostMemory(max_read_request_size=2)
        self.rng = rng

    def device_read_quiet(self, addr, length):
        if any(rule.match(addr, length) for rule in self.mem._faults):
            return b"", True
        return self.mem._load(addr, length), False

    def page(self):
        return self.mem.alloc(PAGE, PAGE, above_4g=self.rng.random() < 0.3)

    def job(self, length, fault=None):
        """(prp1, prp2) for a transfer of ``length`` bytes; ``fault`` breaks one thing."""
        rng = self.rng
        offset = 4 * rng.randrange(PAGE // 4) if rng.random() < 0.7 else 0
        prp1 = self.page() + offset
        if fault == "prp1":
            prp1 += 2
        rem = length - min(length, PAGE - offset)
        if rem == 0:
            return prp1, rng.getrandbits(64) & ~7          # never looked at
        if rem <= PAGE:
            prp2 = self.page()
            return prp1, prp2 + (4 * rng.randrange(1, 1024) if fault == "prp2" else 0)
        need = -(-rem // PAGE)
        pages = [self.page() for _ in range(need)]
        # The list: at an offset; chained when it does not fit (sometimes forced).
        lists, entries = [], list(pages)
        start = 8 * rng.randrange(PAGE // 8 - min(need, 8)) if rng.random() < 0.5 else \
            PAGE - 8 * rng.randrange(2, 6)
        while True:
            base = self.mem.alloc(PAGE, PAGE, above_4g=rng.random() < 0.3)
            slots = (PAGE - start) // 8
            if len(entries) <= slots:
                lists.append((base + start, entries))
                break
            lists.append((base + start, entries[:slots - 1] + [None]))
            entries = entries[slots - 1:]
            start = 0
        for i, (addr, ents) in enumerate(lists):
            if ents[-1] is None:
                ents[-1] = lists[i + 1][0]
            raw = bytearray()
            for j, e in enumerate(ents):
                if fault == "entry" and i == len(lists) - 1 and j == len(ents) - 1:
                    e += 0x200
                if fault == "chain" and ents is not lists[-1][1] and j == len(ents) - 1:
                    e += 0x40
                raw += e.to_bytes(8, "little")
            self.mem.write(addr, bytes(raw))
        if fault == "list":
            self.mem.fail_reads(range(lists[-1][0], lists[-1][0] + 8))
        prp2 = lists[0][0] + (4 if fault == "listptr" else 0)
        return prp1, prp2


@pytest.mark.parametrize("width", [64, 256, 512])
def test_prp_walker(width):
    """Random jobs of both directions — in-page offsets, second pages, lists with offsets,
    chained lists, pages above 4 GiB — and every PRP error; pieces and tokens checked."""
    from nvmecore.nvme.prp_walker import IoOp, PrpWalker
    from nvmetb.dma.amaranth_ports import AmaranthDmaRead
    from nvmetb.dma.behaviour import DmaSettings

    rng = random.Random(width)
    layout = PrpLayoutMemory(rng)
    dut = PrpWalker(width, 20)
    jobs, want = [], []
    faults = [None] * 30 + ["prp1", "prp2", "listptr", "entry", "chain", "list"]
    rng.shuffle(faults)
    for tag, fault in enumerate(faults):
        length = 4 * rng.choice([1, 16, 1024, rng.randrange(1, 1025), rng.randrange(1025, 8193),
                                 rng.randrange(8193, 40000)])
        if fault in ("entry", "chain", "list", "listptr"):
            length = max(length, 3 * PAGE + 4 * rng.randrange(1, 1024))
        if fault == "list":
            length = 20 * PAGE                        # a list read of several beats
        if fault == "chain":
            length = 600 * PAGE                       # needs more than one list page
            length = min(length, 128 * PAGE)
        prp1, prp2 = layout.job(length, fault)
        op = rng.choice([IoOp.READ, IoOp.WRITE, IoOp.COMPARE, IoOp.DSM])
        jobs.append({"tag": tag, "op": op, "prp1": prp1, "prp2": prp2, "length": length,
                     "ns_addr": tag})
        status, pieces = reference_prps(layout, prp1, prp2, length)
        want.append((tag, op, status, pieces))
    # Which beats of a failed read carry the error flag varies by bus: all, the last only
    # (the walker must not judge the read's entries before it), the first only.
    error_beats = {64: "all", 256: "last", 512: "first"}[width]
    settings = DmaSettings(read_latency=12, read_gap=0.2, read_req_stall=0.2,
                           read_error_beats=error_beats)
    dma = AmaranthDmaRead(dut.dma, layout.mem, settings)
    src = Source(dut.job, jobs, gap=0.2, rng=random.Random(7))
    sinks = {name: Sink(getattr(dut, name), stall=0.3, rng=random.Random(i))
             for i, name in enumerate(("seg0", "tok0", "seg1", "tok1"))}

    async def mrrs(ctx):
        ctx.set(dut.max_read_request_size, 1)          # 256 B: several list reads
    def finished():
        toks = sinks["tok0"].received + sinks["tok1"].received
        return len(toks) == len(jobs) and sum(t.pieces for t in toks) == \
            len(sinks["seg0"].received) + len(sinks["seg1"].received)
    run(dut, [dma.process(), src.process(), mrrs] + [s.process() for s in sinks.values()],
        finished, cycles=60000)
    segs = {d: list(sinks[f"seg{d}"].received) for d in (0, 1)}
    toks = {d: list(sinks[f"tok{d}"].received) for d in (0, 1)}
    for tag, op, status, pieces in want:
        d = 0 if op == IoOp.READ else 1
        tok = toks[d].pop(0)
        assert tok.tag == tag and tok.status.name == status, \
            f"job {tag}: token {tok.tag} {tok.status}, want {status}"
        got = [(s.addr, 4 * s.dwords) for s in segs[d][:tok.pieces]]
        del segs[d][:tok.pieces]
        if status == "OK":
            assert got == pieces, f"job {tag}: pieces {got[:4]}..., want {pieces[:4]}..."
        else:
            assert got == pieces[:len(got)], f"job {tag}: pieces before the error differ"
    assert not segs[0] and not segs[1], "pieces left over"
    layout.mem.violations = [v for v in layout.mem.violations if v.kind != "unmapped"]
    layout.mem.check()


@pytest.mark.parametrize("width", [256, 512])
def test_from_host_reads_ahead(width):
    """A Write's data reads are issued as soon as the read buffer has room, across
    commands, however many commands that takes: with 1 µs of host latency the reads of a
    few commands at a time (the from-host mover held 4) leave the link idle most of the
    round trip (512 B Writes ran at 29 % of the interface ceiling). Then every byte
    reaches the backend in command order, each command reported once."""
    from nvmecore import CoreConfig
    from nvmecore.nvme.from_host import READ_BUFFER_BEATS, FromHost
    from nvmecore.nvme.prp_walker import IoOp
    from nvmetb.dma.amaranth_ports import AmaranthDmaRead
    from nvmetb.dma.behaviour import DmaSettings
    from nvmetb.hostmem import HostMemory

    config = CoreConfig(data_width=width)
    dut = FromHost(config)
    rng = random.Random(width)
    mem = HostMemory(max_read_request_size=2)
    size, count = 512, 24
    beats = size // (width // 8)
    fits = READ_BUFFER_BEATS // beats                  # commands whose data the buffer holds
    bufs, payloads = [], []
    for _ in range(count):
        addr = mem.alloc(size)
        payload = rng.randbytes(size)
        mem.write(addr, payload)
        bufs.append(addr)
        payloads.append(payload)
    toks = [{"tag": t, "op": IoOp.WRITE, "prp1": a, "prp2": 0, "length": size,
             "ns_addr": t * size, "status": 0, "pieces": 1} for t, a in enumerate(bufs)]
    segs = [{"addr": a, "dwords": size // 4} for a in bufs]
    latency = 250
    dma = AmaranthDmaRead(dut.dma, mem, DmaSettings(read_latency=latency))
    sources = [Source(dut.tok, toks), Source(dut.seg, segs)]
    sinks = {name: Sink(getattr(dut, name)) for name in ("backend", "wdata", "event")}
    early = []

    async def setup(ctx):
        ctx.set(dut.max_read_request_size, 2)
        issued = 0
        async for _, _, valid, ready, data in ctx.tick().sample(
                dut.dma.req.valid, dut.dma.req.ready, dut.dma.data.valid):
            issued += valid and ready
            if data:
                early.append(issued)                   # reads out when the first data came
                return

    run(dut, [dma.process(), setup] + [s.process() for s in sources]
        + [s.process() for s in sinks.values()],
        lambda: len(sinks["event"].received) == count, cycles=8 * latency + 200 * count)
    assert early and early[0] >= min(fits, count), \
        f"{early[0] if early else 0} reads issued in the first round trip, want {fits}"
    assert [c.tag for c in sinks["backend"].received] == list(range(count))
    assert [e.tag for e in sinks["event"].received] == list(range(count))
    assert all(e.status.as_bits() == 0 for e in sinks["event"].received), "not Success"
    lanes = sinks["wdata"].received
    got = b"".join(int(b.data).to_bytes(width // 8, "little") for b in lanes)
    assert got == b"".join(payloads)
    assert sum(int(b.last) for b in lanes) == count


@pytest.mark.parametrize("width", [256, 512])
def test_to_host_back_to_back(width):
    """A Read's data leaves on the DMA write port back to back: each write's command goes
    while the data of the one before is still going, so at 512 bits a 4 KiB Read's 16
    writes of 256 B take 64 data cycles, not 80 (a cycle per command between them: RQ
    then carried them unstraddled, 89 % of the ceiling). Every write's address, length
    and data in order; the command reported once, after its last beat."""
    from nvmecore import CoreConfig
    from nvmecore.nvme.prp_walker import IoOp
    from nvmecore.nvme.to_host import ToHost

    config = CoreConfig(data_width=width)
    dut = ToHost(config)
    rng = random.Random(width + 1)
    beat_bytes = width // 8
    size, count = 4096, 3
    payloads = [rng.randbytes(size) for _ in range(count)]
    toks = [{"tag": t, "op": IoOp.READ, "prp1": 0x10000 * (t + 1), "prp2": 0, "length": size,
             "ns_addr": t * size, "status": 0, "pieces": 1} for t in range(count)]
    segs = [{"addr": 0x10000 * (t + 1), "dwords": size // 4} for t in range(count)]
    rdata = [{"data": int.from_bytes(p[i:i + beat_bytes], "little"),
              "last": int(i + beat_bytes == size)}
             for p in payloads for i in range(0, size, beat_bytes)]
    sources = [Source(dut.tok, toks), Source(dut.seg, segs), Source(dut.rdata, rdata)]
    sinks = {name: Sink(getattr(dut, name)) for name in ("backend", "event")}
    cmds, beats = [], []

    async def port(ctx):
        ctx.set(dut.max_payload_size, 1)                # 256 B writes
        ctx.set(dut.dma.cmd.ready, 1)
        ctx.set(dut.dma.data.ready, 1)
        cycle = 0
        async for _, _, cv, cp, dv, dp in ctx.tick().sample(
                dut.dma.cmd.valid, dut.dma.cmd.payload, dut.dma.data.valid,
                dut.dma.data.payload):
            cycle += 1
            if cv:
                cmds.append((int(cp.addr), int(cp.length)))
            if dv:
                assert len(cmds) > sum(int(b[1].last) for b in beats), "data before its command"
                beats.append((cycle, dp))

    run(dut, [port] + [s.process() for s in sources] + [s.process() for s in sinks.values()],
        lambda: len(sinks["event"].received) == count, cycles=5000)
    writes = size // 256
    assert cmds == [(0x10000 * (t + 1) + 256 * i, 256) for t in range(count)
                    for i in range(writes)]
    got = b"".join(int(b.data).to_bytes(beat_bytes, "little") for _, b in beats)
    assert got == b"".join(payloads)
    assert [e.tag for e in sinks["event"].received] == list(range(count))
    # the data of one command: a beat every cycle once it flows
    first = [c for c, _ in beats[:size // beat_bytes]]
    assert first[-1] - first[0] + 1 == size // beat_bytes, \
        f"{size // beat_bytes} beats took {first[-1] - first[0] + 1} cycles"
