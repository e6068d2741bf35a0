"""The server: app factory, runtime, config loading, CLI. Wires connectors to sessions."""
