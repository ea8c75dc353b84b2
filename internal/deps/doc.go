// Package deps holds no code, only the tests that enforce the layering of
// imgdataset, in the style of Go's src/go/build/deps_test.go: formats read
// bytes only through store, store and volume know nothing of formats, the
// block server does not reach back into the pipeline, the loopback test
// servers stay out of the library, and the binary links no cloud SDK, gRPC
// or telemetry stack. The rules are a table in deps_test.go; size_test.go
// bounds the size of the binary.
package deps
