"""Commands that need only the compiler: they read .proto files and write generated code, plans and reports."""
