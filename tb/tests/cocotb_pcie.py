"""Full-stack cocotb tests: cocotbext-pcie's root complex enumerates the UltraScale+
hard-IP model wrapping ``UspTop``, then the host driver brings the controller up like
Linux and runs admin commands through real TLPs, interrupts arriving on the root
complex's MSI-X vectors. Run through pytest (``test_pcie_rtl.py``).

The link checkers (``nvmetb.transports.pcie.LinkChecker``) and host memory's own checks
run throughout; ``stress`` makes the root complex split every read completion at the
64-byte read completion boundary and puts backpressure on all four streams.
"""

import itertools
import logging
import random

import cocotb
from cocotb.utils import get_sim_time

from nvmecore.admin_layouts import Cns
from nvmecore.layouts import LogPage
from nvmecore.nvme.identify import identify_controller
from nvmetb.host import NvmeHost
from nvmetb.sim import config_from_env
from nvmetb.transports.pcie import PcieStack

log = logging.getLogger("tb")

DEVICE_ID = 0x0123_4567_89AB_CDEF


def _pauses(seed):
    rng = random.Random(seed)
    return lambda: (rng.random() < 0.3 for _ in itertools.count())


@cocotb.test()
@cocotb.parametrize(stress=[False, True])
async def bring_up(dut, stress):
    """Enumeration, MSI-X allocation, the Linux-like bring-up of every I/O queue pair,
    then admin commands, with the link checked all the way."""
    config = config_from_env()
    stack = PcieStack(dut, config)
    dut.device_id.value = DEVICE_ID
    if stress:
        stack.rc.split_on_all_rcb = True
        stack.set_pause(_pauses(1))
    host_t = await stack.enumerate()
    host = NvmeHost(host_t, poll_us=0.2, command_timeout_us=200)
    start, tlps = get_sim_time("ns"), dict(stack.link.stats.counts)

    pairs = await host.bring_up(io_queues=config.io_queues, queue_entries=16)
    assert pairs == config.io_queues, f"{pairs} I/O queue pairs, {config.io_queues} wanted"
    took = get_sim_time("ns") - start
    counts = {k: v - tlps.get(k, 0) for k, v in stack.link.stats.counts.items()}
    log.info("bring-up of %d queue pairs: %.1f us simulated; TLPs: %s", pairs, took / 1000,
             ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))

    want = identify_controller(config, DEVICE_ID)
    assert host.id_ctrl == want, "Identify Controller data differs from the built ROM"
    _, ns = await host.identify(Cns.NAMESPACE, nsid=1)
    assert len(ns) == 4096
    _, smart = await host.get_log_page(LogPage.SMART_HEALTH, numd=128)
    assert int.from_bytes(smart[1:3], "little") == 313, "SMART temperature"

    # Every queue pair once more: one Identify per I/O queue's vector is not possible
    # (admin only), so delete and re-create the last pair as Linux does on reset.
    await host.delete_io_sq(config.io_queues)
    await host.delete_io_cq(config.io_queues)

    cq_vectors = [(q.base, q.base + 16 * q.entries, q.vector) for q in host.cqs.values()]
    stack.link.check_interrupt_order(cq_vectors)
    messages = len(host_t.msix_messages())
    high = sum(1 for addr, _ in host_t.msix_messages() if addr >> 32)
    log.info("link: %s; %d MSI-X messages (%d above 4 GiB); %d reads still outstanding",
             stack.link.stats, messages, high, len(stack.link.outstanding))
    assert messages > 0, "no interrupt arrived"
    assert high > 0, "no interrupt message used a 64-bit address"
    assert not stack.link.violations, "\n".join(stack.link.violations)
    stack.memory.check()
