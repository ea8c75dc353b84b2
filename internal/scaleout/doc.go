// Package scaleout holds the tests of docs/scale-out.md: they run the
// document's ready files (an sbatch array on a real single-node Slurm, the
// GNU parallel and xargs lines, and the Kubernetes, AWS Batch and Google
// Batch jobs with the environment their engines set) against the built
// binary, then finalize, and compare every output file with a
// single-process conversion. The package has no code of its own.
package scaleout
