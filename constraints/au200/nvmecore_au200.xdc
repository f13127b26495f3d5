# nvmecore on the Alveo U200 (xcu200-fsgd2104-2-e): PCIe Gen3 x16 on the edge connector.
# Pins from the board's public pinout (UG1289, the Alveo U200/U250 user guide); the hard IP
# places its own transceivers and PCIE40E4 site from the lanes, so the lane LOCs below only
# fix the port-to-pin mapping for nvmecore_au200's pcie_rx/tx ports.

# -- Configuration (the card boots from its quad-SPI flash) --------------------------------
set_property CFGBVS GND                                [current_design]
set_property CONFIG_VOLTAGE 1.8                        [current_design]
set_property BITSTREAM.GENERAL.COMPRESS true           [current_design]
set_property BITSTREAM.CONFIG.CONFIGFALLBACK ENABLE    [current_design]
set_property BITSTREAM.CONFIG.EXTMASTERCCLK_EN DISABLE [current_design]
set_property BITSTREAM.CONFIG.CONFIGRATE 63.8          [current_design]
set_property BITSTREAM.CONFIG.SPI_32BIT_ADDR YES       [current_design]
set_property BITSTREAM.CONFIG.SPI_BUSWIDTH 4           [current_design]
set_property BITSTREAM.CONFIG.SPI_FALL_EDGE YES        [current_design]
set_property BITSTREAM.CONFIG.UNUSEDPIN PULLUP         [current_design]

# -- PCIe reference clock: 100 MHz from the slot, MGTREFCLK0 of quad 226 -------------------
set_property -dict {LOC AM11} [get_ports pcie_refclk_p]
set_property -dict {LOC AM10} [get_ports pcie_refclk_n]
create_clock -period 10.000 -name pcie_refclk [get_ports pcie_refclk_p]

# -- PERST# from the slot (active low, 1.2 V bank) ----------------------------------------
set_property -dict {LOC BD21 IOSTANDARD LVCMOS12 PULLUP true} [get_ports pcie_reset_n]
set_false_path -from [get_ports pcie_reset_n]
set_input_delay 0 [get_ports pcie_reset_n]

# -- Lanes (quads 224..227); lane 0 is the edge connector's lane 0 -------------------------
set_property -dict {LOC AF2 } [get_ports {pcie_rx_p[0]}] ;# MGTYRXP3_227 GTYE4_CHANNEL_X1Y35
set_property -dict {LOC AF1 } [get_ports {pcie_rx_n[0]}]
set_property -dict {LOC AF7 } [get_ports {pcie_tx_p[0]}]
set_property -dict {LOC AF6 } [get_ports {pcie_tx_n[0]}]
set_property -dict {LOC AG4 } [get_ports {pcie_rx_p[1]}] ;# MGTYRXP2_227 GTYE4_CHANNEL_X1Y34
set_property -dict {LOC AG3 } [get_ports {pcie_rx_n[1]}]
set_property -dict {LOC AG9 } [get_ports {pcie_tx_p[1]}]
set_property -dict {LOC AG8 } [get_ports {pcie_tx_n[1]}]
set_property -dict {LOC AH2 } [get_ports {pcie_rx_p[2]}] ;# MGTYRXP1_227 GTYE4_CHANNEL_X1Y33
set_property -dict {LOC AH1 } [get_ports {pcie_rx_n[2]}]
set_property -dict {LOC AH7 } [get_ports {pcie_tx_p[2]}]
set_property -dict {LOC AH6 } [get_ports {pcie_tx_n[2]}]
set_property -dict {LOC AJ4 } [get_ports {pcie_rx_p[3]}] ;# MGTYRXP0_227 GTYE4_CHANNEL_X1Y32
set_property -dict {LOC AJ3 } [get_ports {pcie_rx_n[3]}]
set_property -dict {LOC AJ9 } [get_ports {pcie_tx_p[3]}]
set_property -dict {LOC AJ8 } [get_ports {pcie_tx_n[3]}]
set_property -dict {LOC AK2 } [get_ports {pcie_rx_p[4]}] ;# MGTYRXP3_226 GTYE4_CHANNEL_X1Y31
set_property -dict {LOC AK1 } [get_ports {pcie_rx_n[4]}]
set_property -dict {LOC AK7 } [get_ports {pcie_tx_p[4]}]
set_property -dict {LOC AK6 } [get_ports {pcie_tx_n[4]}]
set_property -dict {LOC AL4 } [get_ports {pcie_rx_p[5]}] ;# MGTYRXP2_226 GTYE4_CHANNEL_X1Y30
set_property -dict {LOC AL3 } [get_ports {pcie_rx_n[5]}]
set_property -dict {LOC AL9 } [get_ports {pcie_tx_p[5]}]
set_property -dict {LOC AL8 } [get_ports {pcie_tx_n[5]}]
set_property -dict {LOC AM2 } [get_ports {pcie_rx_p[6]}] ;# MGTYRXP1_226 GTYE4_CHANNEL_X1Y29
set_property -dict {LOC AM1 } [get_ports {pcie_rx_n[6]}]
set_property -dict {LOC AM7 } [get_ports {pcie_tx_p[6]}]
set_property -dict {LOC AM6 } [get_ports {pcie_tx_n[6]}]
set_property -dict {LOC AN4 } [get_ports {pcie_rx_p[7]}] ;# MGTYRXP0_226 GTYE4_CHANNEL_X1Y28
set_property -dict {LOC AN3 } [get_ports {pcie_rx_n[7]}]
set_property -dict {LOC AN9 } [get_ports {pcie_tx_p[7]}]
set_property -dict {LOC AN8 } [get_ports {pcie_tx_n[7]}]
set_property -dict {LOC AP2 } [get_ports {pcie_rx_p[8]}] ;# MGTYRXP3_225 GTYE4_CHANNEL_X1Y27
set_property -dict {LOC AP1 } [get_ports {pcie_rx_n[8]}]
set_property -dict {LOC AP7 } [get_ports {pcie_tx_p[8]}]
set_property -dict {LOC AP6 } [get_ports {pcie_tx_n[8]}]
set_property -dict {LOC AR4 } [get_ports {pcie_rx_p[9]}] ;# MGTYRXP2_225 GTYE4_CHANNEL_X1Y26
set_property -dict {LOC AR3 } [get_ports {pcie_rx_n[9]}]
set_property -dict {LOC AR9 } [get_ports {pcie_tx_p[9]}]
set_property -dict {LOC AR8 } [get_ports {pcie_tx_n[9]}]
set_property -dict {LOC AT2 } [get_ports {pcie_rx_p[10]}] ;# MGTYRXP1_225 GTYE4_CHANNEL_X1Y25
set_property -dict {LOC AT1 } [get_ports {pcie_rx_n[10]}]
set_property -dict {LOC AT7 } [get_ports {pcie_tx_p[10]}]
set_property -dict {LOC AT6 } [get_ports {pcie_tx_n[10]}]
set_property -dict {LOC AU4 } [get_ports {pcie_rx_p[11]}] ;# MGTYRXP0_225 GTYE4_CHANNEL_X1Y24
set_property -dict {LOC AU3 } [get_ports {pcie_rx_n[11]}]
set_property -dict {LOC AU9 } [get_ports {pcie_tx_p[11]}]
set_property -dict {LOC AU8 } [get_ports {pcie_tx_n[11]}]
set_property -dict {LOC AV2 } [get_ports {pcie_rx_p[12]}] ;# MGTYRXP3_224 GTYE4_CHANNEL_X1Y23
set_property -dict {LOC AV1 } [get_ports {pcie_rx_n[12]}]
set_property -dict {LOC AV7 } [get_ports {pcie_tx_p[12]}]
set_property -dict {LOC AV6 } [get_ports {pcie_tx_n[12]}]
set_property -dict {LOC AW4 } [get_ports {pcie_rx_p[13]}] ;# MGTYRXP2_224 GTYE4_CHANNEL_X1Y22
set_property -dict {LOC AW3 } [get_ports {pcie_rx_n[13]}]
set_property -dict {LOC BB5 } [get_ports {pcie_tx_p[13]}]
set_property -dict {LOC BB4 } [get_ports {pcie_tx_n[13]}]
set_property -dict {LOC BA2 } [get_ports {pcie_rx_p[14]}] ;# MGTYRXP1_224 GTYE4_CHANNEL_X1Y21
set_property -dict {LOC BA1 } [get_ports {pcie_rx_n[14]}]
set_property -dict {LOC BD5 } [get_ports {pcie_tx_p[14]}]
set_property -dict {LOC BD4 } [get_ports {pcie_tx_n[14]}]
set_property -dict {LOC BC2 } [get_ports {pcie_rx_p[15]}] ;# MGTYRXP0_224 GTYE4_CHANNEL_X1Y20
set_property -dict {LOC BC1 } [get_ports {pcie_rx_n[15]}]
set_property -dict {LOC BF5 } [get_ports {pcie_tx_p[15]}]
set_property -dict {LOC BF4 } [get_ports {pcie_tx_n[15]}]

# -- LEDs (1.2 V bank): link up, heartbeat, bus master enable ------------------------------
set_property -dict {LOC BC21 IOSTANDARD LVCMOS12 SLEW SLOW DRIVE 8} [get_ports {led[0]}]
set_property -dict {LOC BB21 IOSTANDARD LVCMOS12 SLEW SLOW DRIVE 8} [get_ports {led[1]}]
set_property -dict {LOC BA20 IOSTANDARD LVCMOS12 SLEW SLOW DRIVE 8} [get_ports {led[2]}]
set_false_path -to [get_ports {led[*]}]
set_output_delay 0 [get_ports {led[*]}]

# user_clk (250 MHz) and the transceiver clocks are created by the hard IP's own
# constraints; nvmecore_usp runs entirely on user_clk.
