// Package bench holds the benchmarks that compare the library's providers
// with bare HTTP clients against the real servers of the harness: publish
// throughput, what parts of a publish (encoding, headers) cost against the
// whole, and publish-to-subscriber latency. BENCHMARKS.md at the
// repository root says how to run them and reports one run.
package bench
