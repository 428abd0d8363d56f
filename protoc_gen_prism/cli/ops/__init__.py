"""Commands that act on a database or local servers, through prism_runtime and its backend drivers."""
