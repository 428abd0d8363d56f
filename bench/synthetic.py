"""A synthetic schema of N annotated messages, for benchmarks of the plugin and the schema checks."""

from __future__ import annotations

from pathlib import Path

PATTERNS = ("key_value", "read_heavy", "write_heavy", "append_heavy")


def write_schema(root: Path, messages: int = 1000, per_file: int = 50) -> list[str]:
    """Write `messages` annotated messages over files of `per_file` each; return the file names."""
    names = []
    for file_index in range(0, messages, per_file):
        package = f"synth.part{file_index // per_file:03d}.v1"
        lines = [
            'syntax = "proto3";',
            f"package {package};",
            'import "google/protobuf/timestamp.proto";',
            'import "prism/options.proto";',
            "",
        ]
        for i in range(file_index, min(file_index + per_file, messages)):
            pattern = PATTERNS[i % len(PATTERNS)]
            lines += [
                f"// Entity number {i}.",
                f"message Entity{i} {{",
                f'  option (prism.access_pattern) = "{pattern}";',
                f'  option (prism.estimated_write_rps) = "{100 + i}";',
                '  option (prism.retention_days) = "30";',
                "  string id = 1 [(prism.key) = true];",
                f"  int64 seq = 2{' [(prism.sort_key) = true]' if pattern == 'write_heavy' else ''};",
                '  string email = 3 [(prism.pii) = "email", (prism.encrypt_at_rest) = true];',
                "  google.protobuf.Timestamp at = 4"
                + (" [(prism.event_time) = true]" if pattern == "append_heavy" else "")
                + ";",
                "  repeated string tags = 5;",
                "  map<string, int64> counters = 6;",
                "  optional double score = 7;",
                "  bytes payload = 8;",
                "}",
                "",
            ]
        name = f"synth/part{file_index // per_file:03d}/v1/entities.proto"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines))
        names.append(name)
    return names
