"""Physical backends. Each module says only what is special about its server."""
