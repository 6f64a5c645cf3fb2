"""The wire contract (volume_server, master, remote), field-for-field equal to upstream SeaweedFS."""
