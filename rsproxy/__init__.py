"""rsproxy: a capturing reverse proxy, a browser probe, a pipeline and an MCP server for local web apps."""

__version__ = "0.1.0"
