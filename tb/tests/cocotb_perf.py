"""cocotb side of ``make bench`` (``nvmetb.perf``): one simulation runs one plan of
measurements on the FPGA top and writes what it measured as JSON.

The plan comes in ``NVMETB_PERF_PLAN`` (JSON; ``nvmetb.perf.runner`` writes it):
``{"latency": cycles, "rcb": bytes, "io_queues": n, "out": path, "jobs": [...]}``, each
job one of

- ``{"kind": "latency", "repeat": n}``: the latency breakdown of a Flush and of a Get
  Features alone (n of each, median), and of one 4 KiB Read;
- ``{"kind": "null", "queues", "depth", "irq": "each" | "coalesced" | "off", "count",
  "warmup"}``: sustained Flush commands;
- ``{"kind": "io", "op": "read" | "write", "size", "queues", "depth", "count",
  "warmup"}``: sustained random Reads or Writes.

Results are written after every job (a list: each job with its figures), and a line per
job goes to stdout, the progress the runner shows.
"""

import json
import os
import sys
import time
from pathlib import Path

import cocotb

from nvmetb.perf.bench import COALESCED_THR, COALESCED_TIME, PerfBench, cycle, median_breakdown
from nvmetb.sim import config_from_env

PLAN_ENV = "NVMETB_PERF_PLAN"


def _say(text):
    print(f"[bench] {text}", file=sys.stdout, flush=True)


async def _irq_mode(bench, mode, state):
    """Switch interrupts to ``mode``: each command, coalesced or off (IEN = 0)."""
    if mode == state["irq"]:
        return
    if (mode == "off") != (state["irq"] == "off"):
        await bench.recreate_queues(state["queues"], ien=mode != "off")
    if mode == "coalesced":
        await bench.coalescing(COALESCED_THR, COALESCED_TIME)
    elif state["irq"] == "coalesced":
        await bench.coalescing(0, 0)
    state["irq"] = mode


async def _job(bench, job, state):
    kind = job["kind"]
    if kind == "latency":
        await _irq_mode(bench, "each", state)
        repeat = job.get("repeat", 5)
        flush = [await bench.one_command(bench.null_commands()) for _ in range(repeat)]
        admin = [await bench.admin_command() for _ in range(repeat)]
        read = await bench.one_command(bench.io_commands("read", 4096, 1, 1))
        write = await bench.one_command(bench.io_commands("write", 4096, 1, 1))
        return {"flush": median_breakdown(flush), "get_features": median_breakdown(admin),
                "read_4k": read, "write_4k": write}
    if kind == "null":
        await _irq_mode(bench, job["irq"], state)
        make = bench.null_commands()
    elif kind == "io":
        await _irq_mode(bench, "each", state)
        make = bench.io_commands(job["op"], job["size"], job["queues"], job["depth"])
    else:
        raise ValueError(f"unknown job kind {kind!r}")
    return await bench.rate(make, job["queues"], job["depth"], job["count"], job["warmup"],
                            beats=job.get("beats", False))


@cocotb.test()
async def perf(dut):
    """Run the plan in NVMETB_PERF_PLAN."""
    plan = json.loads(os.environ[PLAN_ENV])
    out = Path(plan["out"])
    config = config_from_env()
    bench = PerfBench(dut, config, latency=plan["latency"], rcb=plan["rcb"])
    await bench.start(plan["io_queues"])
    state = {"irq": "each", "queues": plan["io_queues"]}
    results = []
    jobs = plan["jobs"]
    try:
        for index, job in enumerate(jobs, 1):
            started, wall = cycle(), time.monotonic()
            figures = await _job(bench, job, state)
            results.append({**job, **figures})
            out.write_text(json.dumps(results, indent=1) + "\n")
            shown = figures.get("cycles_per_cmd")
            shown = f"{shown:.2f} cycles/command" if shown is not None else \
                f"flush {figures.get('flush')}"
            _say(f"{plan.get('name', '')} job {index}/{len(jobs)} {job}: {shown} "
                 f"({cycle() - started} cycles simulated in {time.monotonic() - wall:.1f} s)")
    finally:
        bench.stop()
