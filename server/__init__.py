"""neon-mcp: the engine and the process (CLI, settings, MCP assembly, PostgreSQL access, SQL policy, confirmations)."""

__version__ = "0.1.0"
