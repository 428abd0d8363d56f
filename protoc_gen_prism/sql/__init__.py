"""SQL at compile time: DDL rendered with sqlglot per dialect, migrations, and applying generated SQL."""
