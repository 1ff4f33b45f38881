"""The `lynx` command: bring the stack up, submit studies, follow them, read results."""
