"""The inference engine: a worker process that alone owns llama.cpp, and its client."""
