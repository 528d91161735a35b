"""One-off analyst replays: an analyst file over the history, sandboxed, into a file."""
