"""Scenarios for a backend on its own (docs/backend.md), written once and run in the
Amaranth simulator (:class:`~nvmetb.backend.amaranth_bench.AmaranthBackendBench`) and
under cocotb on the Verilog (:class:`~nvmetb.backend.cocotb_bench.CocotbBackendBench`).

Each is ``async def name(bench, ...)``; a bench has ``config``, ``initiator`` (the
:class:`~nvmetb.backend.behaviour.BackendInitiator`, which checks every transfer),
``namespace`` (its shadow), ``rules`` (the :class:`~nvmetb.backend.axi_rules.AxiRules`
on an AXI4 backend's port, else None), ``log``, ``async ticks(n)``, ``async
wait_idle(timeout)`` and ``memory()`` (the namespace as the backend's storage holds it,
read directly, or None).

- :func:`random_traffic`: a random mix of READ / WRITE / ZERO / FLUSH, then
  :func:`check_namespace`;
- :func:`throughput`: 4 KiB READs and WRITEs interleaved, with no back-pressure: one
  beat per cycle both ways at once, back to back across commands;
- :func:`abort_in_traffic`: ``abort`` raised at random moments of random traffic, then
  more traffic and :func:`check_namespace`;
- :func:`error_responses`: READs, WRITEs and ZEROs on and next to the bench's error
  ranges, then random traffic: those touching a range end ERROR, the others OK;
- :func:`flush_after_writes`: WRITEs and ZEROs, then a FLUSH: on AXI4 it waits for
  their B responses (:func:`check_flushes`);
- :func:`check_namespace`: the whole namespace read back through the backend (and, where
  the bench can, straight from its storage), against the shadow.
"""

import random

from nvmecore.backend.interface import BackendOp
from nvmecore.nvm_layouts import SECTOR_BYTES
from nvmetb.backend.behaviour import RandomMix

#: Cycles an abort's drain may last (bursts in flight finishing) in these scenarios.
DRAIN_TIMEOUT = 5000

__all__ = ["random_traffic", "throughput", "abort_in_traffic", "error_responses",
           "flush_after_writes", "check_namespace", "check_flushes"]


async def check_namespace(bench, chunk=8192):
    """Read the whole namespace back through the backend; compare the backend's
    storage, where the bench reaches it, with the shadow."""
    ini, size = bench.initiator, bench.config.namespace_bytes
    for addr in range(0, size, chunk):
        ini.read(addr, min(chunk, size - addr))
    await bench.wait_idle()
    image = bench.memory()
    if image is not None:
        bench.namespace.check(0, image, "backend storage")


async def random_traffic(bench, *, count=60, max_bytes=8192, seed=0, weights=None):
    """``count`` random commands up to ``max_bytes`` long (ops weighted by ``weights``,
    as :class:`~nvmetb.backend.behaviour.RandomMix` takes them), then
    :func:`check_namespace`."""
    ini = bench.initiator
    ini.source = RandomMix(random.Random(seed), count, 0, bench.config.namespace_bytes,
                           max_bytes=max_bytes, weights=weights)
    await bench.wait_idle()
    ini.source = None
    ops = {}
    for r in ini.completed:
        ops[r.op.name] = ops.get(r.op.name, 0) + 1
    bench.log.info("random traffic: %d commands %s in %d cycles, %d failed", count, ops,
                   ini.cycle, sum(r.failed for r in ini.completed))
    check_flushes(bench)
    await check_namespace(bench)


def check_flushes(bench):
    """On an AXI4 backend (and traffic with no abort): every FLUSH's done came after the
    B of every write burst of the WRITEs and ZEROs accepted before it. Those are the
    first bursts on AW that carry as many bytes as they (the backend issues write bursts
    in command order); the rule checker and the initiator count the same clock edges,
    from an offset."""
    rules, ini = bench.rules, bench.initiator
    if rules is None:
        return 0
    offset = rules.cycle - ini.cycle
    sizes = [beats * rules.beat_bytes for ax, _, beats in rules.history if ax == "aw"]
    checked = 0
    for req in ini.completed:
        if req.op != BackendOp.FLUSH:
            continue
        owed = sum(r.length for r in ini.completed + list(_in_flight(ini))
                   if r.op in (BackendOp.WRITE, BackendOp.ZERO) and r.accepted is not None
                   and r.accepted < req.accepted)
        bursts = 0
        while owed > 0:
            owed -= sizes[bursts]
            bursts += 1
        if bursts:
            checked += 1
            if not (len(rules.b_edges) >= bursts
                    and rules.b_edges[bursts - 1] < req.finished + offset):
                raise AssertionError(f"{req} done at edge {req.finished}, before the B of "
                                     f"write burst {bursts - 1}, issued before it")
    return checked


def _in_flight(ini):
    for reqs in ini.in_flight.values():
        yield from reqs


async def flush_after_writes(bench, *, rounds=4, seed=0):
    """``rounds`` times: three 4 KiB WRITEs or ZEROs, a FLUSH, a READ; on an AXI4 backend
    each FLUSH must wait for the B responses of the writes before it
    (:func:`check_flushes`)."""
    ini, rng = bench.initiator, random.Random(seed)
    size = bench.config.namespace_bytes
    for _ in range(rounds):
        # Four different 4 KiB blocks: nothing in flight together overlaps (rule 7).
        *writes, read = (4096 * i for i in rng.sample(range(size // 4096), 4))
        for addr in writes:
            if rng.random() < 0.7:
                ini.write(addr, rng.randbytes(4096))
            else:
                ini.zero(addr, 4096)
        ini.flush()
        ini.read(read, 4096)
        await bench.wait_idle()
    if bench.rules is not None:
        assert check_flushes(bench) >= rounds, "no FLUSH found writes to wait for"


async def throughput(bench, *, commands=4, length=4096):
    """Interleaved READs and WRITEs of ``length`` bytes, nothing stalled: each direction
    must move one beat per cycle, back to back across its commands, while the other
    streams too. Returns the measurements."""
    ini = bench.initiator
    beat_bytes = bench.config.data_width // 8
    half = bench.config.namespace_bytes // 2
    rng = random.Random(1)
    reads, writes = [], []
    for i in range(commands):
        reads.append(ini.read(i * length, length))
        writes.append(ini.write(half + i * length, rng.randbytes(length)))
    await bench.wait_idle()
    beats = commands * length // beat_bytes
    result = {
        "read_cycles": reads[-1].data_done - reads[0].first_beat + 1,
        "write_cycles": writes[-1].data_done - writes[0].first_beat + 1,
        "beats": beats,
        "read_latency": reads[0].first_beat - reads[0].accepted,
        "read_done_after_data": reads[-1].finished - reads[-1].data_done,
        "write_done_after_data": writes[-1].finished - writes[-1].data_done,
    }
    bench.log.info("throughput (%d x %d B each way, %d beats): %s", commands, length,
                   beats, result)
    for way in ("read", "write"):
        assert result[f"{way}_cycles"] == beats, \
            f"{way}: {beats} beats took {result[f'{way}_cycles']} cycles"
    return result


async def abort_in_traffic(bench, *, aborts=3, count=20, max_bytes=8192, seed=0):
    """``aborts`` times: random traffic, then ``abort`` for 1 to 6 cycles at a random
    moment; then traffic again and the whole namespace checked (what the aborted
    WRITEs and ZEROs touched is unknown). On an AXI4 backend at least one abort must
    find bursts in flight, and the drain's W beats (WSTRB 0) are allowed only until the
    first command after it is accepted."""
    ini, rules = bench.initiator, bench.rules
    rng = random.Random(seed)
    size = bench.config.namespace_bytes
    hits = 0
    for _ in range(aborts):
        ini.source = RandomMix(rng, count, 0, size, max_bytes=max_bytes)
        await bench.ticks(rng.randint(20, 300))
        busy = bool(ini.in_flight) if rules is None else not rules.idle
        hits += busy
        bench.log.info("abort at edge %d: %d commands in flight%s", ini.cycle,
                       sum(len(v) for v in ini.in_flight.values()),
                       "" if rules is None else f", AXI busy: {busy}")
        if rules is not None:
            rules.null_strobes = True
        ini.abort(rng.randint(1, 6))
        while ini.aborting:
            await bench.ticks(1)
        if rules is not None:
            accepted = ini.accepted_count
            for _ in range(DRAIN_TIMEOUT):
                if ini.accepted_count != accepted or ini.idle and rules.idle:
                    break
                await bench.ticks(1)
            else:
                raise AssertionError(f"the backend took no command for {DRAIN_TIMEOUT} "
                                     f"cycles after an abort")
            if ini.idle:
                await bench.ticks(64)           # the drain of an idle backend
            rules.null_strobes = False
    ini.source = RandomMix(rng, count, 0, size, max_bytes=max_bytes)
    await bench.wait_idle()
    ini.source = None
    bench.log.info("%d aborts, %d with work in flight; %d commands completed, %d cut "
                   "short", aborts, hits, len(ini.completed), len(ini.aborted))
    assert hits, "no abort found work in flight"
    await check_namespace(bench)


async def error_responses(bench, *, count=12, seed=0):
    """On each of the bench's error ranges (``bench.errors``: namespace ``(start, end,
    resp)``): a READ, a WRITE and a ZERO overlapping its first sector, and a READ and a
    WRITE of the sector just before it; then random traffic. The initiator expects
    ERROR exactly for the commands touching a range (a failed READ still delivers every
    beat); at least one READ and one WRITE must have failed, and the AXI port must have
    carried failed R and B responses."""
    ini, rng = bench.initiator, random.Random(seed)
    for start, _, _ in bench.errors:
        ini.read(start, SECTOR_BYTES)
        ini.write(start, rng.randbytes(2 * SECTOR_BYTES))
        ini.zero(start, SECTOR_BYTES)
        if start >= SECTOR_BYTES:
            ini.read(start - SECTOR_BYTES, SECTOR_BYTES)
            ini.write(start - SECTOR_BYTES, rng.randbytes(SECTOR_BYTES))
    await bench.wait_idle()
    await random_traffic(bench, count=count, seed=seed, max_bytes=4096)
    failed = {r.op for r in ini.completed if r.failed}
    bench.log.info("%d commands failed (%s)", sum(r.failed for r in ini.completed),
                   ", ".join(sorted(op.name for op in failed)))
    assert {BackendOp.READ, BackendOp.WRITE, BackendOp.ZERO} <= failed
    if bench.rules is not None:
        assert bench.rules.errors["r"] and bench.rules.errors["b"]
