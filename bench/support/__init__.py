"""Helpers the benchmarks start or import: handlers, a bare app, the sandbox server, the cluster harness."""
