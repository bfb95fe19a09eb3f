"""The functional core: ids, events, errors, commands, retry and the executor."""
