"""One module per admin page: each gathers its page's facts through the functions the `prism` commands use."""
