// Package fidelity holds no code, only the test that converts and crops one
// real file of every volume kind in the conformance corpus to every output
// format and reads both sides with the readers a user would pick (tifffile,
// hyperspy, zarr-python, ImageJ 1): the voxels, the voxel size in nm and the
// one unit of every output must survive (issue #12).
package fidelity
