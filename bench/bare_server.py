"""A bare MCPServer over stdio with no tools: the floor for cold start (process start to initialize answered)."""

from mcp.server.mcpserver import MCPServer

if __name__ == "__main__":
    MCPServer("bare").run("stdio")
