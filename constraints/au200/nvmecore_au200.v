// nvmecore on AU200 (xcu200-fsgd2104-2-e): the PCIe hard IP (pcie4_uscale_plus_0, Gen3 x16,
// 512-bit AXI4-Stream at 250 MHz) around nvmecore_usp.
// Written by `python -m nvmecore board au200` (hdl/nvmecore/board.py): do not edit.

module nvmecore_au200 #(
    // Personalises the serial number, NQN, NGUID and EUI-64: give each board its
    // own (straps, or the device DNA read at start-up), or two boards clash.
    parameter [63:0] DEVICE_ID = 64'h0000_0000_0000_0001
) (
    input  wire [15:0] pcie_rx_p,
    input  wire [15:0] pcie_rx_n,
    output wire [15:0] pcie_tx_p,
    output wire [15:0] pcie_tx_n,
    input  wire        pcie_refclk_p,
    input  wire        pcie_refclk_n,
    input  wire        pcie_reset_n,     // PERST#, active low
    output wire [2:0] led
);

    // Reference clock: O to the transceivers, ODIV2 (100 MHz) to the IP's sys_clk.
    wire sys_clk, sys_clk_gt, sys_reset_n;
    IBUFDS_GTE4 #(
        .REFCLK_HROW_CK_SEL(2'b00)
    ) refclk_ibuf (
        .I(pcie_refclk_p), .IB(pcie_refclk_n), .CEB(1'b0),
        .O(sys_clk_gt), .ODIV2(sys_clk)
    );
    IBUF perst_ibuf (.I(pcie_reset_n), .O(sys_reset_n));

    // Every port of nvmecore_usp that meets the hard IP, by its PG213 name. The IP's
    // s_axis_rq_tready / s_axis_cc_tready are 4 equal bits: the top takes bit 0.
    wire user_clk;
    wire user_reset;
    wire user_lnk_up;
    wire [511:0] s_axis_rq_tdata;
    wire [15:0] s_axis_rq_tkeep;
    wire s_axis_rq_tlast;
    wire [136:0] s_axis_rq_tuser;
    wire s_axis_rq_tvalid;
    wire [3:0] s_axis_rq_tready;
    wire [511:0] m_axis_rc_tdata;
    wire [15:0] m_axis_rc_tkeep;
    wire m_axis_rc_tlast;
    wire [160:0] m_axis_rc_tuser;
    wire m_axis_rc_tvalid;
    wire [21:0] m_axis_rc_tready;
    wire [511:0] m_axis_cq_tdata;
    wire [15:0] m_axis_cq_tkeep;
    wire m_axis_cq_tlast;
    wire [182:0] m_axis_cq_tuser;
    wire m_axis_cq_tvalid;
    wire [21:0] m_axis_cq_tready;
    wire [511:0] s_axis_cc_tdata;
    wire [15:0] s_axis_cc_tkeep;
    wire s_axis_cc_tlast;
    wire [80:0] s_axis_cc_tuser;
    wire s_axis_cc_tvalid;
    wire [3:0] s_axis_cc_tready;
    wire [1:0] cfg_max_payload;
    wire [2:0] cfg_max_read_req;
    wire [3:0] cfg_rcb_status;
    wire [15:0] cfg_function_status;
    wire [3:0] cfg_interrupt_msix_enable;
    wire [3:0] cfg_interrupt_msix_mask;
    wire [3:0] cfg_flr_in_process;
    wire [31:0] cfg_mgmt_read_data;
    wire cfg_mgmt_read_write_done;
    wire cfg_interrupt_sent;
    wire cfg_power_state_change_interrupt;
    wire [5:0] pcie_cq_np_req_count;
    wire [3:0] pcie_tfc_nph_av;
    wire [1:0] pcie_cq_np_req;
    wire [3:0] cfg_flr_done;
    wire [3:0] cfg_interrupt_int;
    wire [3:0] cfg_interrupt_pending;
    wire [9:0] cfg_mgmt_addr;
    wire cfg_mgmt_read;
    wire [63:0] cfg_dsn;
    wire cfg_power_state_change_ack;
    wire cfg_err_cor_in;
    wire cfg_err_uncor_in;
    wire cfg_config_space_enable;
    wire [7:0] cfg_mgmt_function_number;
    wire cfg_mgmt_write;
    wire [31:0] cfg_mgmt_write_data;
    wire [3:0] cfg_mgmt_byte_enable;
    wire cfg_mgmt_debug_access;
    wire cfg_link_training_enable;
    wire cfg_hot_reset_in;
    wire cfg_req_pm_transition_l23_ready;
    wire cfg_pm_aspm_l1_entry_reject;
    wire cfg_pm_aspm_tx_l0s_entry_disable;
    wire [2:0] cfg_fc_sel;
    wire cfg_msg_transmit;
    wire [2:0] cfg_msg_transmit_type;
    wire [31:0] cfg_msg_transmit_data;
    wire cfg_vf_flr_done;
    wire [7:0] cfg_vf_flr_func_num;
    wire [7:0] cfg_ds_port_number;
    wire [7:0] cfg_ds_bus_number;
    wire [4:0] cfg_ds_device_number;
    wire [31:0] cfg_interrupt_msi_int;
    wire [1:0] cfg_interrupt_msi_select;
    wire [31:0] cfg_interrupt_msi_pending_status;
    wire cfg_interrupt_msi_pending_status_data_enable;
    wire [1:0] cfg_interrupt_msi_pending_status_function_num;
    wire [2:0] cfg_interrupt_msi_attr;
    wire cfg_interrupt_msi_tph_present;
    wire [1:0] cfg_interrupt_msi_tph_type;
    wire [7:0] cfg_interrupt_msi_tph_st_tag;
    wire [7:0] cfg_interrupt_msi_function_number;
    wire cfg_interrupt_msix_int;
    wire [63:0] cfg_interrupt_msix_address;
    wire [31:0] cfg_interrupt_msix_data;
    wire [1:0] cfg_interrupt_msix_vec_pending;
    // the top's own outputs, for an ILA or counters
    wire err_unsupported, err_refused, err_unexpected;
    // hard-IP outputs nothing here uses
    wire phy_rdy_out;

    pcie4_uscale_plus_0 pcie (
        .pci_exp_txp(pcie_tx_p), .pci_exp_txn(pcie_tx_n),
        .pci_exp_rxp(pcie_rx_p), .pci_exp_rxn(pcie_rx_n),
        .sys_clk(sys_clk), .sys_clk_gt(sys_clk_gt), .sys_reset(sys_reset_n),
        .phy_rdy_out(phy_rdy_out),
        .user_clk(user_clk),
        .user_reset(user_reset),
        .user_lnk_up(user_lnk_up),
        .s_axis_rq_tdata(s_axis_rq_tdata),
        .s_axis_rq_tkeep(s_axis_rq_tkeep),
        .s_axis_rq_tlast(s_axis_rq_tlast),
        .s_axis_rq_tuser(s_axis_rq_tuser),
        .s_axis_rq_tvalid(s_axis_rq_tvalid),
        .s_axis_rq_tready(s_axis_rq_tready),
        .m_axis_rc_tdata(m_axis_rc_tdata),
        .m_axis_rc_tkeep(m_axis_rc_tkeep),
        .m_axis_rc_tlast(m_axis_rc_tlast),
        .m_axis_rc_tuser(m_axis_rc_tuser),
        .m_axis_rc_tvalid(m_axis_rc_tvalid),
        .m_axis_rc_tready(m_axis_rc_tready),
        .m_axis_cq_tdata(m_axis_cq_tdata),
        .m_axis_cq_tkeep(m_axis_cq_tkeep),
        .m_axis_cq_tlast(m_axis_cq_tlast),
        .m_axis_cq_tuser(m_axis_cq_tuser),
        .m_axis_cq_tvalid(m_axis_cq_tvalid),
        .m_axis_cq_tready(m_axis_cq_tready),
        .s_axis_cc_tdata(s_axis_cc_tdata),
        .s_axis_cc_tkeep(s_axis_cc_tkeep),
        .s_axis_cc_tlast(s_axis_cc_tlast),
        .s_axis_cc_tuser(s_axis_cc_tuser),
        .s_axis_cc_tvalid(s_axis_cc_tvalid),
        .s_axis_cc_tready(s_axis_cc_tready),
        .cfg_max_payload(cfg_max_payload),
        .cfg_max_read_req(cfg_max_read_req),
        .cfg_rcb_status(cfg_rcb_status),
        .cfg_function_status(cfg_function_status),
        .cfg_interrupt_msix_enable(cfg_interrupt_msix_enable),
        .cfg_interrupt_msix_mask(cfg_interrupt_msix_mask),
        .cfg_flr_in_process(cfg_flr_in_process),
        .cfg_mgmt_read_data(cfg_mgmt_read_data),
        .cfg_mgmt_read_write_done(cfg_mgmt_read_write_done),
        .cfg_interrupt_sent(cfg_interrupt_sent),
        .cfg_power_state_change_interrupt(cfg_power_state_change_interrupt),
        .pcie_cq_np_req_count(pcie_cq_np_req_count),
        .pcie_tfc_nph_av(pcie_tfc_nph_av),
        .pcie_cq_np_req(pcie_cq_np_req),
        .cfg_flr_done(cfg_flr_done),
        .cfg_interrupt_int(cfg_interrupt_int),
        .cfg_interrupt_pending(cfg_interrupt_pending),
        .cfg_mgmt_addr(cfg_mgmt_addr),
        .cfg_mgmt_read(cfg_mgmt_read),
        .cfg_dsn(cfg_dsn),
        .cfg_power_state_change_ack(cfg_power_state_change_ack),
        .cfg_err_cor_in(cfg_err_cor_in),
        .cfg_err_uncor_in(cfg_err_uncor_in),
        .cfg_config_space_enable(cfg_config_space_enable),
        .cfg_mgmt_function_number(cfg_mgmt_function_number),
        .cfg_mgmt_write(cfg_mgmt_write),
        .cfg_mgmt_write_data(cfg_mgmt_write_data),
        .cfg_mgmt_byte_enable(cfg_mgmt_byte_enable),
        .cfg_mgmt_debug_access(cfg_mgmt_debug_access),
        .cfg_link_training_enable(cfg_link_training_enable),
        .cfg_hot_reset_in(cfg_hot_reset_in),
        .cfg_req_pm_transition_l23_ready(cfg_req_pm_transition_l23_ready),
        .cfg_pm_aspm_l1_entry_reject(cfg_pm_aspm_l1_entry_reject),
        .cfg_pm_aspm_tx_l0s_entry_disable(cfg_pm_aspm_tx_l0s_entry_disable),
        .cfg_fc_sel(cfg_fc_sel),
        .cfg_msg_transmit(cfg_msg_transmit),
        .cfg_msg_transmit_type(cfg_msg_transmit_type),
        .cfg_msg_transmit_data(cfg_msg_transmit_data),
        .cfg_vf_flr_done(cfg_vf_flr_done),
        .cfg_vf_flr_func_num(cfg_vf_flr_func_num),
        .cfg_ds_port_number(cfg_ds_port_number),
        .cfg_ds_bus_number(cfg_ds_bus_number),
        .cfg_ds_device_number(cfg_ds_device_number),
        .cfg_interrupt_msi_int(cfg_interrupt_msi_int),
        .cfg_interrupt_msi_select(cfg_interrupt_msi_select),
        .cfg_interrupt_msi_pending_status(cfg_interrupt_msi_pending_status),
        .cfg_interrupt_msi_pending_status_data_enable(cfg_interrupt_msi_pending_status_data_enable),
        .cfg_interrupt_msi_pending_status_function_num(cfg_interrupt_msi_pending_status_function_num),
        .cfg_interrupt_msi_attr(cfg_interrupt_msi_attr),
        .cfg_interrupt_msi_tph_present(cfg_interrupt_msi_tph_present),
        .cfg_interrupt_msi_tph_type(cfg_interrupt_msi_tph_type),
        .cfg_interrupt_msi_tph_st_tag(cfg_interrupt_msi_tph_st_tag),
        .cfg_interrupt_msi_function_number(cfg_interrupt_msi_function_number),
        .cfg_interrupt_msix_int(cfg_interrupt_msix_int),
        .cfg_interrupt_msix_address(cfg_interrupt_msix_address),
        .cfg_interrupt_msix_data(cfg_interrupt_msix_data),
        .cfg_interrupt_msix_vec_pending(cfg_interrupt_msix_vec_pending)
    );

    nvmecore_usp core (
        .user_clk(user_clk),
        .user_reset(user_reset),
        .user_lnk_up(user_lnk_up),
        .s_axis_rq_tdata(s_axis_rq_tdata),
        .s_axis_rq_tkeep(s_axis_rq_tkeep),
        .s_axis_rq_tlast(s_axis_rq_tlast),
        .s_axis_rq_tuser(s_axis_rq_tuser),
        .s_axis_rq_tvalid(s_axis_rq_tvalid),
        .s_axis_rq_tready(s_axis_rq_tready[0]),
        .m_axis_rc_tdata(m_axis_rc_tdata),
        .m_axis_rc_tkeep(m_axis_rc_tkeep),
        .m_axis_rc_tlast(m_axis_rc_tlast),
        .m_axis_rc_tuser(m_axis_rc_tuser),
        .m_axis_rc_tvalid(m_axis_rc_tvalid),
        .m_axis_rc_tready(m_axis_rc_tready),
        .m_axis_cq_tdata(m_axis_cq_tdata),
        .m_axis_cq_tkeep(m_axis_cq_tkeep),
        .m_axis_cq_tlast(m_axis_cq_tlast),
        .m_axis_cq_tuser(m_axis_cq_tuser),
        .m_axis_cq_tvalid(m_axis_cq_tvalid),
        .m_axis_cq_tready(m_axis_cq_tready),
        .s_axis_cc_tdata(s_axis_cc_tdata),
        .s_axis_cc_tkeep(s_axis_cc_tkeep),
        .s_axis_cc_tlast(s_axis_cc_tlast),
        .s_axis_cc_tuser(s_axis_cc_tuser),
        .s_axis_cc_tvalid(s_axis_cc_tvalid),
        .s_axis_cc_tready(s_axis_cc_tready[0]),
        .cfg_max_payload(cfg_max_payload),
        .cfg_max_read_req(cfg_max_read_req),
        .cfg_rcb_status(cfg_rcb_status),
        .cfg_function_status(cfg_function_status),
        .cfg_interrupt_msix_enable(cfg_interrupt_msix_enable),
        .cfg_interrupt_msix_mask(cfg_interrupt_msix_mask),
        .cfg_flr_in_process(cfg_flr_in_process),
        .cfg_mgmt_read_data(cfg_mgmt_read_data),
        .cfg_mgmt_read_write_done(cfg_mgmt_read_write_done),
        .cfg_interrupt_sent(cfg_interrupt_sent),
        .cfg_power_state_change_interrupt(cfg_power_state_change_interrupt),
        .pcie_cq_np_req_count(pcie_cq_np_req_count),
        .pcie_tfc_nph_av(pcie_tfc_nph_av),
        .pcie_cq_np_req(pcie_cq_np_req),
        .cfg_flr_done(cfg_flr_done),
        .cfg_interrupt_int(cfg_interrupt_int),
        .cfg_interrupt_pending(cfg_interrupt_pending),
        .cfg_mgmt_addr(cfg_mgmt_addr),
        .cfg_mgmt_read(cfg_mgmt_read),
        .cfg_dsn(cfg_dsn),
        .cfg_power_state_change_ack(cfg_power_state_change_ack),
        .cfg_err_cor_in(cfg_err_cor_in),
        .cfg_err_uncor_in(cfg_err_uncor_in),
        .cfg_config_space_enable(cfg_config_space_enable),
        .cfg_mgmt_function_number(cfg_mgmt_function_number),
        .cfg_mgmt_write(cfg_mgmt_write),
        .cfg_mgmt_write_data(cfg_mgmt_write_data),
        .cfg_mgmt_byte_enable(cfg_mgmt_byte_enable),
        .cfg_mgmt_debug_access(cfg_mgmt_debug_access),
        .cfg_link_training_enable(cfg_link_training_enable),
        .cfg_hot_reset_in(cfg_hot_reset_in),
        .cfg_req_pm_transition_l23_ready(cfg_req_pm_transition_l23_ready),
        .cfg_pm_aspm_l1_entry_reject(cfg_pm_aspm_l1_entry_reject),
        .cfg_pm_aspm_tx_l0s_entry_disable(cfg_pm_aspm_tx_l0s_entry_disable),
        .cfg_fc_sel(cfg_fc_sel),
        .cfg_msg_transmit(cfg_msg_transmit),
        .cfg_msg_transmit_type(cfg_msg_transmit_type),
        .cfg_msg_transmit_data(cfg_msg_transmit_data),
        .cfg_vf_flr_done(cfg_vf_flr_done),
        .cfg_vf_flr_func_num(cfg_vf_flr_func_num),
        .cfg_ds_port_number(cfg_ds_port_number),
        .cfg_ds_bus_number(cfg_ds_bus_number),
        .cfg_ds_device_number(cfg_ds_device_number),
        .cfg_interrupt_msi_int(cfg_interrupt_msi_int),
        .cfg_interrupt_msi_select(cfg_interrupt_msi_select),
        .cfg_interrupt_msi_pending_status(cfg_interrupt_msi_pending_status),
        .cfg_interrupt_msi_pending_status_data_enable(cfg_interrupt_msi_pending_status_data_enable),
        .cfg_interrupt_msi_pending_status_function_num(cfg_interrupt_msi_pending_status_function_num),
        .cfg_interrupt_msi_attr(cfg_interrupt_msi_attr),
        .cfg_interrupt_msi_tph_present(cfg_interrupt_msi_tph_present),
        .cfg_interrupt_msi_tph_type(cfg_interrupt_msi_tph_type),
        .cfg_interrupt_msi_tph_st_tag(cfg_interrupt_msi_tph_st_tag),
        .cfg_interrupt_msi_function_number(cfg_interrupt_msi_function_number),
        .cfg_interrupt_msix_int(cfg_interrupt_msix_int),
        .cfg_interrupt_msix_address(cfg_interrupt_msix_address),
        .cfg_interrupt_msix_data(cfg_interrupt_msix_data),
        .cfg_interrupt_msix_vec_pending(cfg_interrupt_msix_vec_pending),
        .device_id(DEVICE_ID),
        .temperature(16'd313),          // kelvin; no sensor wired
        .err_unsupported(err_unsupported),
        .err_refused(err_refused),
        .err_unexpected(err_unexpected)
    );

    // LEDs: link up, heartbeat, bus master enable.
    reg [27:0] heartbeat = 0;
    always @(posedge user_clk) heartbeat <= heartbeat + 1'b1;
    reg [2:0] led_q = 0;
    always @(posedge user_clk)
        led_q <= {cfg_function_status[2], heartbeat[27], user_lnk_up};
    assign led = led_q;

endmodule
