"""gpt-oss's harmony format: prompt rendering, output parsing, and the tools it may call."""
