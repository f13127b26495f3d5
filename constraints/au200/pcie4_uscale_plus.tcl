# Creates the UltraScale+ PCIe hard IP (module pcie4_uscale_plus_0) with the settings
# docs/pcie-ultrascale-plus.md lists for nvmecore: Gen3 x16, 512-bit AXI4-Stream at
# 250 MHz, DWORD-aligned, client tags, RQ straddle (as nvmecore_usp's default
# --rq-straddle at 512 bits), no CQ/CC straddle, class code 01 08 02, BAR0 64-bit
# non-prefetchable 16 KiB, MSI-X with its table at BAR0 + 0x2000 and PBA at BAR0 + 0x3000
# (external: the table lives in nvmecore), no MSI, INTA, FLR, extended tags.
#
# Sourced by build.tcl in a project for the board's part. Variables that may be set
# before sourcing: ip_dir (where the IP goes), msix_vectors (default 17 = 16 I/O queues
# + admin; CoreConfig.msix_vectors), and the PCI IDs (CoreConfig.pci_*_id).

if {![info exists ip_dir]}            { set ip_dir [file join [pwd] ip] }
if {![info exists msix_vectors]}      { set msix_vectors 17 }
if {![info exists pci_vendor_id]}     { set pci_vendor_id 10EE }
if {![info exists pci_device_id]}     { set pci_device_id 9038 }
if {![info exists pci_subsys_vendor]} { set pci_subsys_vendor 10EE }
if {![info exists pci_subsys_id]}     { set pci_subsys_id 0007 }

file mkdir $ip_dir
create_ip -name pcie4_uscale_plus -vendor xilinx.com -library ip \
    -module_name pcie4_uscale_plus_0 -dir $ip_dir

set_property -dict [list \
    CONFIG.mode_selection                       {Advanced} \
    CONFIG.device_port_type                     {PCI_Express_Endpoint_device} \
    CONFIG.PL_LINK_CAP_MAX_LINK_SPEED           {8.0_GT/s} \
    CONFIG.PL_LINK_CAP_MAX_LINK_WIDTH           {X16} \
    CONFIG.axisten_if_width                     {512_bit} \
    CONFIG.axisten_freq                         {250} \
    CONFIG.AXISTEN_IF_CQ_ALIGNMENT_MODE         {DWORD_Aligned} \
    CONFIG.AXISTEN_IF_RQ_ALIGNMENT_MODE         {DWORD_Aligned} \
    CONFIG.AXISTEN_IF_EXT_512_CQ_STRADDLE       {false} \
    CONFIG.AXISTEN_IF_EXT_512_CC_STRADDLE       {false} \
    CONFIG.AXISTEN_IF_EXT_512_RQ_STRADDLE       {true} \
    CONFIG.AXISTEN_IF_EXT_512_RC_STRADDLE       {true} \
    CONFIG.AXISTEN_IF_EXT_512_RC_4TLP_STRADDLE  {true} \
    CONFIG.axisten_if_enable_client_tag         {true} \
    CONFIG.extended_tag_field                   {true} \
    CONFIG.pf0_dev_cap_max_payload              {1024_bytes} \
    CONFIG.PF0_DEV_CAP_FUNCTION_LEVEL_RESET_CAPABLE {true} \
    CONFIG.vendor_id                            $pci_vendor_id \
    CONFIG.PF0_DEVICE_ID                        $pci_device_id \
    CONFIG.PF0_SUBSYSTEM_VENDOR_ID              $pci_subsys_vendor \
    CONFIG.PF0_SUBSYSTEM_ID                     $pci_subsys_id \
    CONFIG.PF0_CLASS_CODE                       {010802} \
    CONFIG.pf0_bar0_enabled                     {true} \
    CONFIG.pf0_bar0_type                        {Memory} \
    CONFIG.pf0_bar0_64bit                       {true} \
    CONFIG.pf0_bar0_prefetchable                {false} \
    CONFIG.pf0_bar0_scale                       {Kilobytes} \
    CONFIG.pf0_bar0_size                        {16} \
    CONFIG.pf0_bar2_enabled                     {false} \
    CONFIG.pf0_bar4_enabled                     {false} \
    CONFIG.pf0_expansion_rom_enabled            {false} \
    CONFIG.pf0_msi_enabled                      {false} \
    CONFIG.pf0_msix_enabled                     {true} \
    CONFIG.MSI_X_OPTIONS                        {MSI-X_External} \
    CONFIG.PF0_MSIX_CAP_TABLE_SIZE              [format %03X [expr {$msix_vectors - 1}]] \
    CONFIG.PF0_MSIX_CAP_TABLE_BIR               {BAR_1:0} \
    CONFIG.PF0_MSIX_CAP_TABLE_OFFSET            {00002000} \
    CONFIG.PF0_MSIX_CAP_PBA_BIR                 {BAR_1:0} \
    CONFIG.PF0_MSIX_CAP_PBA_OFFSET              {00003000} \
    CONFIG.PF0_INTERRUPT_PIN                    {INTA} \
    CONFIG.PF0_DSN_CAP_ENABLE                   {true} \
] [get_ips pcie4_uscale_plus_0]

generate_target all [get_ips pcie4_uscale_plus_0]
