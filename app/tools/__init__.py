"""Agentic tools beyond the built-in functions: gpt-oss's python tool in a sandbox, MCP servers."""
