"""Who may call: the TLS credentials (reloaded when their files change) and the per-caller policy."""
