"""What every SQL backend shares: dialects, the row codec, DDL and statements, the KeyValue store."""
