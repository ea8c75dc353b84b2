package sample

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgdataset/imgdataset/format/dm"
	"github.com/imgdataset/imgdataset/format/precomputed"
	"github.com/imgdataset/imgdataset/format/tiff"
	"github.com/imgdataset/imgdataset/format/zarr"
	"github.com/imgdataset/imgdataset/mirror"
	"github.com/imgdataset/imgdataset/store"
	"github.com/imgdataset/imgdataset/volume"
)

// Known parameters of the demo content: what the generators wrote, so tests can
// check the pipeline's table against the truth.
const (
	IDRImageXY, IDRImageXZ = 9846137, 9846138
	IDRDataset             = 10740
	IDRVoxelUM             = 0.02 // ImageJ spacing and 1/resolution, µm
	EMPIARID               = "11759"
	EMPIARSections         = 16
	EMPIARPixelUM          = 0.007998250424861908
	EMPIARZSpacingNM       = 50.0
	EPFLVoxelNM            = 5.0 // stated only on the web page; the TIFFs carry none
	CosemBucket            = "janelia-cosem-datasets"
	CosemStore             = "jrc_mus-nacc-2/jrc_mus-nacc-2.zarr"
	HemibrainBucket        = "neuroglancer-janelia-flyem-hemibrain"
	HemibrainPrefix        = "emdata/clahe_yz/jpeg"
	HemibrainVoxelNM       = 8.0
)

// Shapes (z, y, x) of the demo arrays: small stand-ins for the real ones.
var (
	IDRShapeXY       = [3]int64{24, 40, 56}
	IDRShapeXZ       = [3]int64{40, 24, 56}
	EMPIARShape      = [2]int64{100, 96} // y, x per section (real: 5500 × 5496)
	EPFLVolumeShape  = [3]int64{33, 48, 64}
	EPFLSmallShape   = [3]int64{17, 24, 32}
	CosemShape       = [3]int64{36, 80, 82}
	CosemScaleNM     = [3]float64{2.96, 4, 4}
	CosemLevels      = 4
	NucShape         = [3]int64{9, 20, 21}
	HemibrainShape   = [3]int64{160, 176, 192} // z, y, x
	HemibrainLevels  = 3
	EPFLFiles        = []string{"volumedata.tif", "training.tif", "testing.tif", "training_groundtruth.tif", "testing_groundtruth.tif", "results_test.tif"}
	IDRProjectName   = "idr0086-miron-micrographs/experimentD"
	IDRClientDir     = "/uod/idr/filesets/idr0086-miron-micrographs/20200610-ftp/experimentD/Miron_FIB-SEM/Miron_FIB-SEM_processed/"
	IDRNames         = [2]string{"Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xy.tif", "Figure_S3B_FIB-SEM_U2OS_20x20x20nm_xz.tif"}
	EMPIARFilePrefix = "data/F57-8_test1_3VBSED_slice_"
)

// ImageJTIFF writes a uint8 ImageJ hyperstack with calibration, like IDR's files.
func ImageJTIFF(ctx context.Context, shape [3]int64, seed uint64, voxelUM float64) ([]byte, error) {
	v, err := Mem("stack", volume.Uint8, ZYX(shape, [3]float64{voxelUM, voxelUM, voxelUM}, "µm"), EM(shape, seed, 1))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = tiff.Write(ctx, &b, v, tiff.WriteOptions{ImageJ: true, Spacing: voxelUM, Unit: "µm", PixelWidth: voxelUM, PixelHeight: voxelUM})
	return b.Bytes(), err
}

// PlainTIFF writes an uncalibrated multipage uint8 TIFF, like EPFL's; bigTIFF
// selects the 64-bit container.
func PlainTIFF(ctx context.Context, shape [3]int64, seed uint64, bigTIFF bool) ([]byte, error) {
	v, err := Mem("stack", volume.Uint8, ZYX(shape, [3]float64{}, ""), EM(shape, seed, 1))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = tiff.Write(ctx, &b, v, tiff.WriteOptions{BigTIFF: bigTIFF})
	return b.Bytes(), err
}

// DM3Section writes one serial section like EMPIAR-11759's: a uint8 image with
// an RGBA thumbnail, µm calibration and the 50 nm z spacing in Meta Data.
func DM3Section(shape [2]int64, seed uint64, index int) ([]byte, error) {
	data := EM([3]int64{1, shape[0], shape[1]}, seed, 1)
	var b bytes.Buffer
	err := dm.WriteDM3(&b, dm.Image{
		Name:   fmt.Sprintf("F57-8_test1_3VBSED_slice_%04d", index),
		DType:  volume.Uint8,
		Shape:  []int64{shape[0], shape[1]},
		Data:   data,
		Scales: []float64{EMPIARPixelUM, EMPIARPixelUM},
		Units:  []string{"µm", "µm"},
		Tags: map[string]any{
			"Microscope Info.Voltage":                 1900.0,
			"Microscope Info.Indicated Magnification": 2159.0,
			"Microscope Info.Microscope":              "FEI Quanta",
			"DataBar.Acquisition Date":                "11.06.2018",
			"DataBar.Acquisition Time":                "22:27:16",
		},
		ZSpacing: EMPIARZSpacingNM,
		ZUnit:    "nm",
	})
	return b.Bytes(), err
}

// Content generates everything the demo mirrors serve. dir is scratch space for
// the chunked stores (written through the real writers, then loaded as objects).
func Content(ctx context.Context, dir string) (*mirror.Content, error) {
	c := &mirror.Content{EMPIARID: EMPIARID, EMPIARFiles: map[string][]byte{}, EPFLFiles: map[string][]byte{}, S3: map[string][]byte{}, GCS: map[string][]byte{}}

	// IDR: two ImageJ stacks of one dataset.
	for i, shape := range [][3]int64{IDRShapeXY, IDRShapeXZ} {
		b, err := ImageJTIFF(ctx, shape, uint64(100+i), IDRVoxelUM)
		if err != nil {
			return nil, fmt.Errorf("idr tiff: %w", err)
		}
		c.IDR = append(c.IDR, mirror.IDRImage{
			ID: int64(IDRImageXY + i), DatasetID: IDRDataset, DatasetName: "U2OS_chromatin", ProjectName: IDRProjectName,
			Name: IDRNames[i], ClientPath: IDRClientDir + IDRNames[i], Data: b,
			SizeX: int(shape[2]), SizeY: int(shape[1]), SizeZ: int(shape[0]), SizeC: 1, SizeT: 1, PixelsType: "uint8",
			PhysicalSizeUM: [3]float64{IDRVoxelUM, IDRVoxelUM, IDRVoxelUM},
		})
	}

	// EMPIAR: 16 DM3 sections, the XML header, and a trakem2 project folder.
	for i := 0; i < EMPIARSections; i++ {
		b, err := DM3Section(EMPIARShape, uint64(200+i), i)
		if err != nil {
			return nil, fmt.Errorf("empiar dm3: %w", err)
		}
		c.EMPIARFiles[fmt.Sprintf("%s%04d.dm3", EMPIARFilePrefix, i)] = b
	}
	c.EMPIARFiles["data/F57-8_test1.xml.gz"] = gz([]byte("<?xml version=\"1.0\"?>\n<trakem2><t2_layer_set/></trakem2>\n"))
	c.EMPIARFiles["data/trakem2.1528909664283.981147357.856576865/trakem2.mipmaps/0/0.jpg"] = []byte("not really a jpeg; excluded by the manifest")
	c.EMPIARFiles["data/trakem2.1528909664283.981147357.856576865/trakem2.project.xml"] = []byte("<project/>\n")

	// EPFL: six uncalibrated multipage TIFFs.
	for i, name := range EPFLFiles {
		shape := EPFLSmallShape
		if name == "volumedata.tif" {
			shape = EPFLVolumeShape
		}
		b, err := PlainTIFF(ctx, shape, uint64(300+i), false)
		if err != nil {
			return nil, fmt.Errorf("epfl tiff: %w", err)
		}
		c.EPFLFiles[name] = b
	}

	// OpenOrganelle: OME-Zarr 0.4, int16 zstd level 1, 64³ chunks, 4 levels, plus nucleus labels.
	local := store.New(store.NewFile(dir))
	emAxes := ZYX(CosemShape, CosemScaleNM, "nanometer")
	em, err := Mem("fibsem-int16", volume.Int16, emAxes, EMInt16(CosemShape, 400))
	if err != nil {
		return nil, err
	}
	if err := zarr.WriteNGFF(ctx, local, "cosem/"+CosemStore+"/recon-2/em/fibsem-int16", em, zarr.WriteOptions{
		Chunks: []int64{64, 64, 64}, Compressor: "zstd", Level: 1, Levels: CosemLevels, Name: "", DimensionSeparator: "/"}); err != nil {
		return nil, fmt.Errorf("openorganelle zarr: %w", err)
	}
	nucScale := [3]float64{CosemScaleNM[0] * 4, CosemScaleNM[1] * 4, CosemScaleNM[2] * 4}
	nuc, err := Mem("nuc", volume.Uint8, ZYX(NucShape, nucScale, "nanometer"), Labels(NucShape, 400))
	if err != nil {
		return nil, err
	}
	if err := zarr.WriteNGFF(ctx, local, "cosem/"+CosemStore+"/recon-2/labels/inference/segmentations/nuc", nuc, zarr.WriteOptions{
		Chunks: []int64{64, 64, 64}, Compressor: "zstd", Level: 6, Levels: 2, Method: volume.Mode, DimensionSeparator: "/"}); err != nil {
		return nil, fmt.Errorf("openorganelle labels: %w", err)
	}
	if err := local.WriteAll(ctx, "cosem/"+CosemStore+"/.zgroup", []byte(`{"zarr_format": 2}`)); err != nil {
		return nil, err
	}
	for _, p := range []string{"recon-2", "recon-2/em", "recon-2/labels", "recon-2/labels/inference", "recon-2/labels/inference/segmentations"} {
		if err := local.WriteAll(ctx, "cosem/"+CosemStore+"/"+p+"/.zgroup", []byte(`{"zarr_format": 2}`)); err != nil {
			return nil, err
		}
	}
	if err := loadTree(filepath.Join(dir, "cosem"), CosemBucket+"/", c.S3); err != nil {
		return nil, err
	}

	// Hemibrain: sharded JPEG precomputed, 8 nm, 64³ chunks, 3 scales, tissue in a central ellipsoid.
	hb, err := Mem("hemibrain", volume.Uint8, ZYX(HemibrainShape, [3]float64{HemibrainVoxelNM, HemibrainVoxelNM, HemibrainVoxelNM}, "nm"), EM(HemibrainShape, 500, 0.9))
	if err != nil {
		return nil, err
	}
	if err := precomputed.Write(ctx, local, "gcs/"+HemibrainPrefix, hb, precomputed.WriteOptions{
		Encoding: "jpeg", JPEGQuality: 90, ChunkSize: [3]int64{64, 64, 64},
		// The real emdata info was never captured (sources.md); this layout
		// borrows the identity-hash family of the same bucket with fewer bits so
		// the small demo volume spans several shards.
		Sharding:   &precomputed.Sharding{Hash: "identity", PreshiftBits: 1, MinishardBits: 1, ShardBits: 2, MinishardIndexEncoding: "gzip", DataEncoding: "raw"},
		Resolution: [3]float64{HemibrainVoxelNM, HemibrainVoxelNM, HemibrainVoxelNM}, Scales: HemibrainLevels, Type: "image",
	}); err != nil {
		return nil, fmt.Errorf("hemibrain precomputed: %w", err)
	}
	if err := loadTree(filepath.Join(dir, "gcs"), HemibrainBucket+"/", c.GCS); err != nil {
		return nil, err
	}
	return c, nil
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// loadTree reads every file under root into m as prefix+relative path.
func loadTree(root, prefix string, m map[string][]byte) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".imgdataset-tmp-") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		m[prefix+filepath.ToSlash(rel)] = b
		return nil
	})
}
