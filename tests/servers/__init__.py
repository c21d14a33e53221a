"""Real servers (or faithful stand-ins) that integration tests and benchmarks run against."""
