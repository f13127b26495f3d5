"""The backends on their own as generated Verilog, under Icarus and Verilator: the RAM
disk and the AXI4 master (behind cocotbext-axi's RAM), each top running its group of
tests from cocotb_backends.py (random mixes fast and busy, throughput, abort; AXI error
responses)."""

import pytest
from amaranth.back import verilog

from nvmecore import CoreConfig
from nvmecore.backend.axi import AxiBackend
from nvmecore.backend.ramdisk import RamDisk
from nvmetb.sim import CONFIG_ENV, SIMULATORS, build, config_to_env, run, run_dir

#: A small namespace (the RAM disk's memory is in the Verilog), three bursts in flight,
#: the namespace high in a 40-bit AXI space, a 4-bit ID.
CONFIG = CoreConfig(namespace_bytes=32 << 10, axi_addr_width=40, axi_base=0x80_0000_0000,
                    axi_id_width=4, axi_id=0xA, axi_outstanding=3)
TOPS = {
    "ramdisk": ("nvmecore_ramdisk", RamDisk),
    "axi": ("nvmecore_axi_backend", AxiBackend),
}


def generate(top):
    name, block = TOPS[top]
    return verilog.convert(block(CONFIG), name=name, emit_src=False)


@pytest.mark.parametrize("top", list(TOPS))
@pytest.mark.parametrize("sim", [pytest.param(s, marks=getattr(pytest.mark, s), id=s)
                                 for s in SIMULATORS])
def test_backend(sim, top, request):
    import cocotb_backends

    name = TOPS[top][0]
    tests = [n for n in dir(cocotb_backends) if n.startswith(f"{top}_")]
    build_dir = build(sim, generate(top), name)
    run(sim, build_dir, name, "cocotb_backends", tests, run_dir(request.node.nodeid),
        env={CONFIG_ENV: config_to_env(CONFIG)})
