"""Stateful random differential testing: Hypothesis rule-based state machines drive the
host driver on the RTL (the Amaranth simulation of NvmeCore) with the reference model in
lock step, and Hypothesis shrinks a failure to the shortest sequence of rules that still
fails.

:class:`SimServer` runs one Amaranth simulation of the core in a thread for a whole
Hypothesis run (elaborating the core costs seconds): the state machine, in the test's
thread, hands it coroutines to run in simulated time (:meth:`SimServer.call`). Every
example starts from a function-level reset and the Linux-like bring-up, so examples do
not depend on one another (the namespace, which survives resets in the RAM disk and in
the model alike, is known to both).

:class:`DifferentialMachine`'s rules: valid and invalid admin and I/O commands, doorbell
abuse (queues that do not exist, values beyond the queue size), MMIO reads of every
width at any offset and writes to read-only and reserved registers, controller reset,
shutdown and function-level reset at any point, DMA read errors on a Write's data.
After every step (:meth:`DifferentialMachine.agree`): RTL and model agree on every CQ
entry, data buffer and MSI-X message (``BenchTransport.compare``), no device access
broke a host-memory rule (outside the buffers handed over, across 4 KiB, beyond max
payload / read request size), no command is lost (the driver's time-out, in simulated
cycles, is the watchdog) or duplicated (the driver refuses a CID not outstanding); after
every reset the controller comes back (the bring-up succeeds); at the end of an example
the RAM disk's namespace image equals the model's.
"""

import os
import queue
import threading

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from nvmecore import CoreConfig, NvmeCore
from nvmecore.admin_layouts import Cns, FeatureId
from nvmecore.layouts import DOORBELL_BASE, MSIX_PBA_BASE, MSIX_TABLE_BASE, Reg
from nvmecore.nvm_layouts import BROADCAST_NSID, PAGE_BYTES
from nvmetb.host import NvmeHost, PrpLayout, pattern

__all__ = ["SimServer", "DifferentialMachine", "machine_settings", "run_machine",
           "run_cocotb_machine", "regressions", "CONFIG", "EXAMPLES_ENV"]

#: A small build: two I/O queue pairs keep the bring-up short in the Amaranth simulator.
CONFIG = CoreConfig(io_queues=2, max_queue_entries=64, data_width=128, debug=True)
EXAMPLES_ENV = "NVMETB_EXAMPLES"
IO_QUEUES = 2                          # the pairs every example brings up
QUEUE_ENTRIES = 8
REGION_BLOCKS = 256                    # the LBAs the rules use (128 KiB at 512 B)


class _Mailbox:
    """Jobs from the Hypothesis thread to the thread that runs the simulation, and their
    answers (a value, or the exception the job raised)."""

    def __init__(self):
        self.requests = queue.Queue()
        self.replies = queue.Queue()

    def ask(self, fn, timeout_s):
        """Have ``fn`` (an async function) run in the simulation; its value, or its error
        raised here."""
        self.requests.put(fn)
        try:
            ok, value = self.replies.get(timeout=timeout_s)
        except queue.Empty as error:
            raise TimeoutError(f"no answer from the simulation in {timeout_s} s") from error
        if not ok:
            raise value
        return value

    async def serve(self):
        """Run the jobs in the simulation, in order, until :meth:`stop`."""
        while (job := self.requests.get()) is not None:
            try:
                self.replies.put((True, await job()))
            except BaseException as error:            # noqa: BLE001 (handed to the caller)
                self.replies.put((False, error))

    def stop(self):
        self.requests.put(None)


class SimServer:
    """One Amaranth simulation of ``config``'s core, serving coroutines from another
    thread. ``call(fn)`` runs ``await fn(host, bench)`` in simulated time and returns its
    result (or raises its exception)."""

    def __init__(self, config: CoreConfig = CONFIG, dma="fast"):
        from nvmetb.amaranth_edges import EdgeProcess
        from nvmetb.bench.amaranth_backend import AmaranthBackend, _simulate, ramdisk_image
        from nvmetb.bench.harness import PATTERNS, CheckedCore
        from nvmetb.bench.transport import BenchTransport
        from nvmetb.dma.amaranth_ports import AmaranthDma
        from nvmetb.dma.behaviour import DMA_SETTINGS
        from nvmetb.hostmem import HostMemory

        self.config = config
        core = NvmeCore(config)
        backend = AmaranthBackend(core, PATTERNS["fast"], 0)
        memory = HostMemory(max_payload_size=0, max_read_request_size=2)
        dma_ports = AmaranthDma(core.dma_rd, core.dma_wr, memory, DMA_SETTINGS[dma],
                                cfg=core.cfg)

        async def namespace():
            return ramdisk_image(backend.ctx, core.storage)
        self.namespace = namespace
        self.bench = BenchTransport(CheckedCore(backend), memory)
        self.commands = 0              # NVMe commands submitted, over every example
        self.examples = 0
        self._mail = _Mailbox()
        self.error = None

        async def body(ctx):
            backend.ctx = ctx
            await self._mail.serve()

        edges = EdgeProcess()
        backend.add_monitors(edges, dma=False)
        dma_ports.add_to(edges)

        def run():
            try:
                _simulate(core, [edges.process()], body)
            except BaseException as error:        # noqa: BLE001
                self.error = error
                self._mail.replies.put((False, error))

        self._thread = threading.Thread(target=run, name="amaranth-sim", daemon=True)
        self._thread.start()

    def call(self, fn, timeout_s=600):
        if self.error is not None:
            raise RuntimeError(f"the simulation stopped: {self.error!r}")
        return self._mail.ask(fn, timeout_s)

    def close(self):
        self._mail.stop()
        self._thread.join(60)


class _QueueServer:
    """What :class:`DifferentialMachine` needs of a simulation, for one that runs in
    another thread (cocotb's): :meth:`call` queues the job and waits for the answer."""

    def __init__(self, bench, config, namespace):
        self.bench, self.config, self.namespace = bench, config, namespace
        self.commands = 0
        self.examples = 0
        self.mail = _Mailbox()

    def call(self, fn, timeout_s=600):
        return self.mail.ask(fn, timeout_s)


def run_machine(server, examples=None, steps=8, **kwargs):
    """Run :class:`DifferentialMachine` on ``server`` (its settings as
    :func:`machine_settings`)."""
    from hypothesis import HealthCheck
    from hypothesis.stateful import run_state_machine_as_test

    try:
        DifferentialMachine.server = server
        run_state_machine_as_test(DifferentialMachine, settings=machine_settings(
            examples, steps, suppress_health_check=list(HealthCheck), **kwargs))
    finally:
        DifferentialMachine.server = None


def regressions(server):
    """Shrunk failures the machine found, replayed as fixed sequences (each a list of
    examples, each a list of (rule, arguments)): they must pass now.

    1. (soak, Amaranth and Verilator) A Write whose data page failed leaves its blocks
       undefined: the RTL holds part of the new data, the model the old. The next
       example compared those blocks (a Compare: RTL Compare Failure, model success; a
       Read: different data) — a bench defect, not an RTL one: examples now start by
       zeroing undefined blocks, and Reads and Compares of undefined blocks are not
       compared.
    """
    sequences = [
        [[("write_dma_error", {"qid": 2, "slba": 208})],
         [("other_io", {"qid": 2, "op": "compare", "slba": 212, "blocks": 8}),
          ("read", {"qid": 1, "slba": 208, "blocks": 16, "offset": 0})]],
        [[("write_dma_error", {"qid": 1, "slba": 0}),
          ("read", {"qid": 1, "slba": 0, "blocks": 16, "offset": 8}),
          ("other_io", {"qid": 2, "op": "compare", "slba": 4, "blocks": 8}),
          ("write", {"qid": 2, "slba": 0, "blocks": 16, "seed": 1, "offset": 0}),
          ("other_io", {"qid": 1, "op": "compare", "slba": 0, "blocks": 8})]],
    ]
    try:
        DifferentialMachine.server = server
        for sequence in sequences:
            for example in sequence:
                machine = DifferentialMachine()
                machine.start()
                for rule_name, arguments in example:
                    getattr(machine, rule_name)(**arguments)
                    machine.agree()
                machine.teardown()
    finally:
        DifferentialMachine.server = None


async def run_cocotb_machine(dut, config, examples=None, steps=8, *, body=None, **kwargs):
    """The state machine on the Verilog under cocotb: the core-level bench with the model
    in lock step, Hypothesis in a thread of its own, each rule's coroutine run here
    (the simulator waits while Hypothesis chooses the next). ``body(server)``, if given,
    runs in that thread instead of Hypothesis (fixed sequences). Returns the server (its
    ``commands`` and ``examples``); raises what the machine raised."""
    from nvmetb.bench.cocotb_backend import CocotbBackend, probe_namespace
    from nvmetb.bench.harness import PATTERNS, CheckedCore
    from nvmetb.bench.transport import BenchTransport
    from nvmetb.dma.behaviour import DMA_SETTINGS
    from nvmetb.dma.cocotb_ports import CocotbDma
    from nvmetb.hostmem import HostMemory

    backend = CocotbBackend(dut, config, PATTERNS["fast"], 0)
    memory = HostMemory(max_payload_size=0, max_read_request_size=2)
    dma = CocotbDma(dut, memory, DMA_SETTINGS["fast"], width=config.data_width,
                    edges=backend.edges)
    await backend.start(dma=False)
    dma.start()
    bench = BenchTransport(CheckedCore(backend), memory)

    async def namespace():
        return await probe_namespace(dut, config)
    # The RAM disk keeps its contents over a reset (an earlier cocotb test's): the model
    # starts from them.
    bench.core.model.store.data[:] = await namespace()
    server = _QueueServer(bench, config, namespace)
    outcome = []

    def hypothesis_thread():
        try:
            if body is not None:
                body(server)
            else:
                run_machine(server, examples, steps, **kwargs)
        except BaseException as error:            # noqa: BLE001 (raised in the test)
            outcome.append(error)
        finally:
            server.mail.stop()

    thread = threading.Thread(target=hypothesis_thread, name="hypothesis", daemon=True)
    thread.start()
    try:
        await server.mail.serve()                     # the simulator waits between jobs
    finally:
        thread.join(60)
        dma.stop()
        backend.stop()
    if outcome:
        raise outcome[0]
    return server


def machine_settings(examples=None, steps=8, **kwargs):
    """The example budget: ``examples`` (default ``$NVMETB_EXAMPLES`` or 3)."""
    examples = examples or int(os.environ.get(EXAMPLES_ENV, "3"))
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                    **kwargs)


class DifferentialMachine(RuleBasedStateMachine):
    """The host driver on the RTL, the model in lock step. Set :attr:`server` (a
    :class:`SimServer`) before running."""

    server: SimServer = None

    def __init__(self):
        super().__init__()
        self.bench = self.server.bench
        self.host = None
        self.size = 512
        self.steps = 0

    def _run(self, fn):
        self.steps += 1
        return self.server.call(lambda: fn(self.host, self.bench))

    # -- Start: function-level reset and bring-up ------------------------------------------------

    @initialize()
    def start(self):
        async def start(_, bench):
            bench.clear_faults()
            await bench.core.flr()
            bench.forget_io(admin=True)
            host = NvmeHost(bench, poll_us=0.1, command_timeout_us=200)
            submit = host.submit

            async def counted(*args, **kwargs):
                self.server.commands += 1
                return await submit(*args, **kwargs)
            host.submit = counted
            await host.bring_up(io_queues=IO_QUEUES,
                                queue_entries=QUEUE_ENTRIES)
            # Blocks an earlier example's failed Write left undefined (their contents
            # differ between RTL and model, by the contract) are zeroed, so that every
            # example starts from a namespace both agree on.
            size = host.lba_bytes()
            for begin, end in list(bench.core.model.store.undefined):
                first, last = begin // size, -(-end // size)
                for slba in range(first, last, 0x10000):
                    await host.write_zeroes(1, slba, min(0x10000, last - slba))
            host.track_namespace()
            return host
        self.host = self.server.call(lambda: start(None, self.bench))
        self.size = self.host.lba_bytes()

    async def _up(self, host, bench):
        await host.bring_up(io_queues=IO_QUEUES,
                            queue_entries=QUEUE_ENTRIES)

    # -- NVM I/O -----------------------------------------------------------------------------

    @rule(qid=st.integers(1, IO_QUEUES), slba=st.integers(0, REGION_BLOCKS - 16),
          blocks=st.integers(1, 16), seed=st.integers(0, 1 << 16),
          offset=st.sampled_from([0, 4, 0x200, PAGE_BYTES - 4]))
    def write(self, qid, slba, blocks, seed, offset):
        data = pattern(("write", seed), blocks * self.size)

        async def go(host, _):
            await host.write(qid, slba, data, layout=PrpLayout(offset=offset))
        self._run(go)

    @rule(qid=st.integers(1, IO_QUEUES), slba=st.integers(0, REGION_BLOCKS - 16),
          blocks=st.integers(1, 16), offset=st.sampled_from([0, 8, 0x800]))
    def read(self, qid, slba, blocks, offset):
        async def go(host, bench):
            # Blocks a failed Write left undefined read as whatever the RTL holds.
            undefined = self._undefined(bench, slba, blocks)
            await host.read(qid, slba, blocks, layout=PrpLayout(offset=offset),
                            name="undefined" if undefined else "data")
        self._run(go)

    def _undefined(self, bench, slba, blocks):
        return bench.core.model.store.undefined.overlaps(slba * self.size,
                                                         (slba + blocks) * self.size)

    @rule(qid=st.integers(1, IO_QUEUES),
          op=st.sampled_from(["flush", "zeroes", "dsm", "compare"]),
          slba=st.integers(0, REGION_BLOCKS - 8), blocks=st.integers(1, 8))
    def other_io(self, qid, op, slba, blocks):
        async def go(host, _):
            if op == "flush":
                await host.flush(qid)
            elif op == "zeroes":
                await host.write_zeroes(qid, slba, blocks)
            elif op == "dsm":
                await host.dataset_management(qid, [(slba, blocks)])
            elif self._undefined(host.t, slba, blocks):
                await host.flush(qid)           # a Compare there has no defined outcome
            else:
                known = host.shadow.is_known(slba * self.size, blocks * self.size)
                payload = bytes(host.shadow.image[slba * self.size:(slba + blocks) * self.size]) \
                    if known else bytes(blocks * self.size)
                await host.compare(qid, slba, payload, check=False)
        self._run(go)

    @rule(qid=st.integers(1, IO_QUEUES),
          kind=st.sampled_from(["nsid 0", "nsid 2", "nsid ffffffff", "past the end",
                                "overflow", "opcode", "mdts", "fuse", "psdt"]))
    def invalid_io(self, qid, kind):
        async def go(host, _):
            n = host.namespace_blocks()
            fail = {"check": False, "name": "failing"}
            if kind.startswith("nsid"):
                nsid = {"nsid 0": 0, "nsid 2": 2, "nsid ffffffff": BROADCAST_NSID}[kind]
                await host.read(qid, 0, 1, nsid=nsid, **fail)
            elif kind == "past the end":
                await host.read(qid, n - 1, 2, **fail)
            elif kind == "overflow":
                await host.read(qid, (1 << 64) - 1, 2, **fail)
            elif kind == "opcode":
                await host.io_wait(await host.io_submit(qid, 0x7F))
            elif kind == "mdts":
                await host.read(qid, 0, host.mdts_bytes // self.size + 1, **fail)
            elif kind == "fuse":
                await host.read(qid, 0, 1, fuse=1, **fail)
            else:
                await host.read(qid, 0, 1, psdt=1, **fail)
        self._run(go)

    @rule(qid=st.integers(1, IO_QUEUES), slba=st.integers(0, REGION_BLOCKS - 16))
    def write_dma_error(self, qid, slba):
        """A Write whose last data page cannot be read: Data Transfer Error, the blocks
        undefined until written again."""
        async def go(host, bench):
            cmd = await host.submit_write(qid, slba, pattern("dte", 16 * self.size),
                                          ring=False, name="failing")
            addr, length = cmd.prp.pieces[-1]
            bench.fail_reads(addr, addr + length)
            await host.ring_sq(qid)
            await host.io_wait(cmd)
            bench.clear_faults()
        self._run(go)

    # -- Admin ---------------------------------------------------------------------------------

    @rule(kind=st.sampled_from(["identify", "features", "log"]), which=st.integers(0, 15))
    def admin(self, kind, which):
        async def go(host, _):
            if kind == "identify":
                cns = [Cns.CONTROLLER, Cns.NAMESPACE, Cns.ACTIVE_NSID_LIST,
                       Cns.NS_DESCRIPTORS, 0x06, 0x08, 0x10][which % 7]
                await host.identify(cns, nsid=1, check=False)
            elif kind == "features":
                fid = list(FeatureId)[which % len(FeatureId)]
                await host.get_features(fid, cdw11=1, check=False)
            else:
                await host.get_log_page([1, 2, 3, 0x7F][which % 4], 16, check=False)
        self._run(go)

    @rule(opcode=st.sampled_from([0x03, 0x07, 0x0B, 0x10, 0x7F, 0x81, 0xC0]))
    def invalid_admin(self, opcode):
        async def go(host, _):
            await host.admin(opcode)
        self._run(go)

    @rule(qid=st.integers(3, 8), cq=st.booleans(), value=st.integers(0, 0xFFFF),
          existing=st.booleans())
    def doorbell_abuse(self, qid, cq, value, existing):
        """A doorbell of a queue that does not exist, or a value ≥ its size."""
        async def go(host, bench):
            if existing:
                q = 1 + qid % IO_QUEUES
                await bench.mmio_write(host.doorbell(q, cq), QUEUE_ENTRIES + value % 64)
            else:
                await bench.mmio_write(host.doorbell(qid, cq), value)
            await bench.wait(2)
            await host.process_completions(0)
        self._run(go)

    @rule(offset=st.integers(0, 0x3FFF), width=st.sampled_from([1, 2, 4, 8]))
    def mmio_read(self, offset, width):
        offset -= offset % width

        async def go(_, bench):
            await bench.mmio_read(offset, width)
        self._run(go)

    @rule(offset=st.sampled_from([Reg.CAP, Reg.CAP + 4, Reg.VS, Reg.CSTS, Reg.NSSR,
                                  Reg.CMBLOC, 0x40, 0x50, 0xF00, 0xFFC, MSIX_PBA_BASE,
                                  DOORBELL_BASE - 4]),
          value=st.integers(0, 0xFFFF_FFFF))
    def mmio_write_read_only(self, offset, value):
        """Writes to read-only and reserved registers change nothing."""
        async def go(_, bench):
            await bench.mmio_write(offset, value)
            await bench.mmio_read(offset & ~7, 8)
        self._run(go)

    @rule(vector=st.integers(0, IO_QUEUES), mask=st.booleans())
    def msix_mask(self, vector, mask):
        async def go(_, bench):
            await bench.mmio_write(MSIX_TABLE_BASE + 16 * vector + 12, int(mask))
        self._run(go)

    # -- Resets -----------------------------------------------------------------------------

    @rule()
    def controller_reset(self):
        async def go(host, bench):
            await host.disable()
            await self._up(host, bench)
        self._run(go)

    @rule()
    def shutdown(self):
        async def go(host, bench):
            await host.shutdown(delete_queues=False)
            await host.disable()
            await self._up(host, bench)
        self._run(go)

    @rule()
    def function_level_reset(self):
        async def go(host, bench):
            await bench.compare()               # admin outcomes before the FLR, then none
            await bench.core.flr()
            bench.forget_io(admin=True)
            host._forget_queues()
            await self._up(host, bench)
        self._run(go)

    # -- Invariants ----------------------------------------------------------------------------

    @invariant()
    @precondition(lambda self: self.host is not None)
    def agree(self):
        async def go(_, bench):
            await bench.compare()
        self.server.call(lambda: go(None, self.bench))

    def teardown(self):
        if self.host is None:
            return

        async def go(_, bench):
            bench.namespace_image = self.server.namespace
            try:
                await bench.compare()
            finally:
                bench.namespace_image = None
        self.server.call(lambda: go(None, self.bench))
        self.server.examples += 1
