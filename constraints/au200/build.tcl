# Bitstream for the Alveo U200 in Vivado batch mode (`make bitstream`):
#
#   vivado -mode batch -source constraints/au200/build.tcl \
#       -tclargs <nvmecore_usp.v, 512 bits> <output folder>
#
# Creates the hard IP (pcie4_uscale_plus.tcl), reads nvmecore_usp and the board wrapper
# nvmecore_au200.v, the board's constraints, then synthesises, places, routes, reports
# timing and utilisation, and writes nvmecore_au200.bit. Needs Vivado with a licence for
# the xcu200 (the PCIe hard IP itself needs none).

if {[llength $argv] != 2} {
    error "usage: vivado -mode batch -source build.tcl -tclargs NVMECORE_USP_V OUT_DIR"
}
set core_v  [file normalize [lindex $argv 0]]
set out_dir [file normalize [lindex $argv 1]]
set here    [file dirname [file normalize [info script]]]
set part    xcu200-fsgd2104-2-e
file mkdir $out_dir

create_project -in_memory -part $part
set ip_dir [file join $out_dir ip]
source [file join $here pcie4_uscale_plus.tcl]
synth_ip [get_ips pcie4_uscale_plus_0]

read_verilog $core_v [file join $here nvmecore_au200.v]
read_xdc [file join $here nvmecore_au200.xdc]

synth_design -top nvmecore_au200 -part $part
opt_design
place_design
phys_opt_design
route_design

report_timing_summary -file [file join $out_dir timing.rpt]
report_utilization    -file [file join $out_dir utilization.rpt]
write_bitstream -force      [file join $out_dir nvmecore_au200.bit]

# Fail the build when user_clk (250 MHz) misses timing.
set wns [get_property SLACK [get_timing_paths -max_paths 1 -nworst 1 -setup]]
if {$wns < 0} { error "timing not met: worst negative slack $wns ns" }
