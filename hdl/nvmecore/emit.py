"""Verilog output: Amaranth's converter, with one thing it cannot do by itself.

Memories marked with :data:`NO_INIT` (the RAM disk's namespace, which zeroes itself at
power-on) are written without initial contents. Amaranth emits every memory's initial
contents bit by bit, which for a namespace of megabytes takes minutes and makes the
Verilog a line per word; the block RAMs and UltraRAMs it becomes need none.
"""

from contextlib import contextmanager

from amaranth.back import rtlil, verilog

__all__ = ["NO_INIT", "convert"]

#: ``attrs`` for an ``amaranth.lib.memory.Memory`` whose initial contents are never used.
NO_INIT = {"nvmecore_no_init": 1}


@contextmanager
def _without_marked_inits():
    emitter = rtlil.ModuleEmitter
    original = emitter.emit_memory

    def emit_memory(self, cell_idx, cell):
        if "nvmecore_no_init" in cell.attributes:
            if any(cell.init):
                raise ValueError(f"memory {cell.name} has initial contents and NO_INIT")
            return
        original(self, cell_idx, cell)

    emitter.emit_memory = emit_memory
    try:
        yield
    finally:
        emitter.emit_memory = original


def convert(component, *, name):
    """The Verilog of ``component``, reproducibly (no source locations)."""
    with _without_marked_inits():
        return verilog.convert(component, name=name, emit_src=False)
