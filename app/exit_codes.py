"""Exit codes of every `hearth` command (a contract scripts rely on)."""

EXIT_OK = 0  # done
EXIT_FAIL = 1  # it could not be done (a tool that could not run, a server that failed)
EXIT_USAGE = 2  # bad arguments or input
EXIT_LOAD = 3  # the model (or the remote server's model) could not be loaded
EXIT_INTERRUPTED = 130  # Ctrl+C
