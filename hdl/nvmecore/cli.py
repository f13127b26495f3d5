"""Command line: ``python -m nvmecore generate`` writes the core's Verilog,
``python -m nvmecore regmap`` prints the BAR0 register map."""

import argparse
import dataclasses
import sys
from pathlib import Path

from .config import BACKENDS, CoreConfig
from .core import NvmeCore
from .emit import convert
from .layouts import DOORBELL_BASE, MSIX_PBA_BASE, MSIX_TABLE_BASE, REG_WIDTH, Reg
from .nvme.ctrl_regs import cap_value

__all__ = ["generate_verilog", "generate_usp_verilog", "main"]

TOP_NAME = "nvmecore"
USP_TOP_NAME = "nvmecore_usp"


def generate_verilog(config: CoreConfig, name: str = TOP_NAME) -> str:
    """The core's Verilog for ``config``, reproducibly (no source locations)."""
    return convert(NvmeCore(config), name=name)


def generate_usp_verilog(config: CoreConfig, name: str = USP_TOP_NAME,
                         rq_straddle: bool | None = None) -> str:
    """The FPGA top for an UltraScale+ PCIe hard IP (:class:`~nvmecore.top.UspTop`): the
    core behind the adapter, with PG213's port names."""
    from .top import UspTop
    return convert(UspTop(config, rq_straddle=rq_straddle), name=name)


def _config_arguments(parser):
    defaults = CoreConfig()
    parser.add_argument("--io-queues", type=int, default=defaults.io_queues,
                        help="I/O queue pairs besides the admin pair (default %(default)s)")
    parser.add_argument("--max-queue-entries", type=int, default=defaults.max_queue_entries,
                        help="entries per queue, CAP.MQES + 1 (default %(default)s)")
    parser.add_argument("--msix-vectors", type=int, default=None,
                        help="MSI-X vectors (default: I/O queues + 1)")
    parser.add_argument("--data-width", type=int, default=defaults.data_width,
                        choices=(64, 128, 256, 512), help="DMA datapath width in bits")
    parser.add_argument("--backend", choices=BACKENDS, default=defaults.backend,
                        help="where the namespace lives: on-chip RAM disk, an AXI4 master "
                             "port, or the backend interface on the boundary "
                             "(default %(default)s; docs/backend.md)")
    parser.add_argument("--namespace-bytes", type=_size, default=defaults.namespace_bytes,
                        help="namespace size, bytes, K/M/G suffixes allowed "
                             "(default %(default)s)")
    parser.add_argument("--lba-format", type=int, choices=(0, 1), default=defaults.lba_format,
                        help="LBA format at power-on: 0 = 512 B, 1 = 4 KiB (default "
                             "%(default)s)")
    parser.add_argument("--io-slots", type=int, default=defaults.io_slots,
                        help="I/O commands in flight at once (default %(default)s)")
    parser.add_argument("--sq-fetch-reads", type=int, default=defaults.sq_fetch_reads,
                        help="SQ entry reads in flight at once; size for the host's memory "
                             "latency (default %(default)s)")
    parser.add_argument("--axi-addr-width", type=int, default=defaults.axi_addr_width,
                        help="axi backend: address width (default %(default)s)")
    parser.add_argument("--axi-base", type=_size, default=defaults.axi_base,
                        help="axi backend: where the namespace starts (default %(default)s)")
    parser.add_argument("--debug", action="store_true",
                        help="add the test-only ports (never for a real build)")


def _size(text):
    """An integer with an optional K, M or G suffix (powers of 1024), or 0x hex."""
    text = text.strip()
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1:].lower(), 1)
    try:
        return int(text[:-1] if scale > 1 else text, 0) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None


def _config_from(args) -> CoreConfig:
    return CoreConfig(io_queues=args.io_queues, max_queue_entries=args.max_queue_entries,
                      msix_vectors=args.msix_vectors, data_width=args.data_width,
                      backend=args.backend, namespace_bytes=args.namespace_bytes,
                      lba_format=args.lba_format, io_slots=args.io_slots,
                      sq_fetch_reads=args.sq_fetch_reads,
                      axi_addr_width=args.axi_addr_width, axi_base=args.axi_base,
                      debug=args.debug)


def _cmd_generate(args):
    config = _config_from(args)
    if args.top == "usp":
        name = args.name or USP_TOP_NAME
        straddle = {"auto": None, "on": True, "off": False}[args.rq_straddle]
        text = generate_usp_verilog(config, name=name, rq_straddle=straddle)
    else:
        name = args.name or TOP_NAME
        text = generate_verilog(config, name=name)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        settings = ", ".join(f"{f.name}={getattr(config, f.name)}"
                             for f in dataclasses.fields(config))
        print(f"wrote {out} (top module {name}; {settings})", file=sys.stderr)


def _cmd_board(args):
    from .board import BOARDS, board_wrapper
    text = board_wrapper(BOARDS[args.board])
    out = Path(args.output or f"constraints/{args.board}/nvmecore_{args.board}.v")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}", file=sys.stderr)


def _cmd_regmap(args):
    config = _config_from(args)
    print(f"{'offset':>8}  {'register':<8} bits  value at reset")
    for reg in Reg:
        if reg not in REG_WIDTH:
            continue
        value = f"{cap_value(config):#018x}" if reg is Reg.CAP else ""
        print(f"  {reg.value:#06x}  {reg.name:<8} {REG_WIDTH[reg]:>4}  {value}")
    last = DOORBELL_BASE + 8 * config.io_queues
    print(f"  {DOORBELL_BASE:#06x}  SQ0TDBL..CQ{config.io_queues}HDBL (to {last + 7:#06x})")
    print(f"  {MSIX_TABLE_BASE:#06x}  MSI-X table, {config.msix_vectors} vectors x 16 B")
    print(f"  {MSIX_PBA_BASE:#06x}  MSI-X PBA")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nvmecore",
                                     description="nvmecore: NVMe controller IP core")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the core's Verilog")
    _config_arguments(gen)
    gen.add_argument("--top", choices=("core", "usp"), default="core",
                     help="core: the vendor-neutral NvmeCore; usp: the FPGA top for an "
                          "UltraScale+ PCIe hard IP (256 or 512 bits) (default %(default)s)")
    gen.add_argument("--rq-straddle", choices=("auto", "on", "off"), default="auto",
                     help="usp: RQ straddling, as set in the hard IP (auto: on at 512 bits)")
    gen.add_argument("-o", "--output", default="build/nvmecore.v",
                     help="output file, or - for standard output (default %(default)s)")
    gen.add_argument("--name", default=None,
                     help=f"top module name (default {TOP_NAME}, or {USP_TOP_NAME} for usp)")
    gen.set_defaults(func=_cmd_generate)
    board = sub.add_parser("board", help="write a board wrapper (hard IP + nvmecore_usp)")
    board.add_argument("board", choices=("au200",))
    board.add_argument("-o", "--output", default=None,
                       help="default constraints/BOARD/nvmecore_BOARD.v")
    board.set_defaults(func=_cmd_board)
    regmap = sub.add_parser("regmap", help="print the BAR0 register map")
    _config_arguments(regmap)
    regmap.set_defaults(func=_cmd_regmap)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except ValueError as error:        # ConfigError, or a width the top cannot take
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    return 0
