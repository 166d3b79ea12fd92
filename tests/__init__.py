"""The neon-mcp test suite."""
