package catalog

import (
	"encoding/json"
	"fmt"
)

// ReadDocument decodes a catalog.json written by WriteAll. A document of a
// newer schema than this package writes is refused rather than half read.
func ReadDocument(b []byte) (*Document, error) {
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("catalog.json: %w", err)
	}
	if d.SchemaVersion > SchemaVersion {
		return nil, fmt.Errorf("catalog.json: schema version %d; this imgdataset reads up to %d", d.SchemaVersion, SchemaVersion)
	}
	return &d, nil
}

// UnmarshalJSON reads the flat form MarshalJSON writes. Derived columns
// (extents) are recomputed from shape and voxel size, not read.
func (r *Record) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*r = Record{}
	var cropZ, cropY, cropX *int64
	targets := map[string]any{
		"schema_version": &r.SchemaVersion, "dataset": &r.Dataset, "array": &r.Array, "source_url": &r.SourceURL,
		"local_path": &r.LocalPath, "format": &r.Format, "status": &r.Status,
		"dtype": &r.DType, "ndim": &r.NDim,
		"shape_z": &r.ShapeZ, "shape_y": &r.ShapeY, "shape_x": &r.ShapeX, "shape_c": &r.ShapeC, "shape_t": &r.ShapeT,
		"chunk_z": &r.ChunkZ, "chunk_y": &r.ChunkY, "chunk_x": &r.ChunkX, "compression": &r.Compression,
		"voxel_size_z_nm": &r.VoxelZ, "voxel_size_y_nm": &r.VoxelY, "voxel_size_x_nm": &r.VoxelX,
		"voxel_size_source": &r.VoxelSource, "isotropic": &r.Isotropic,
		"offset_z_nm": &r.OffsetZ, "offset_y_nm": &r.OffsetY, "offset_x_nm": &r.OffsetX,
		"scale_level": &r.ScaleLevel, "downsampling": &r.Downsampling,
		"crop_origin_z": &cropZ, "crop_origin_y": &cropY, "crop_origin_x": &cropX, "crop_seed": &r.CropSeed,
		"file_bytes": &r.FileBytes, "uncompressed_bytes": &r.Uncompressed, "sha256": &r.SHA256,
		"value_min": &r.ValueMin, "value_max": &r.ValueMax, "value_mean": &r.ValueMean, "value_sample": &r.ValueSample,
		"microscope": &r.Microscope, "voltage_kv": &r.VoltageKV, "magnification": &r.Magnification,
		"acquisition_date": &r.AcquisitionDate, "modality": &r.Modality, "specimen": &r.Specimen,
		"doi": &r.DOI, "license": &r.License, "title": &r.Title, "metadata_source": &r.MetadataSource,
		"conflicts": &r.Conflicts, "notes": &r.Notes, "metadata": &r.Metadata,
	}
	for k, raw := range m {
		t, ok := targets[k]
		if !ok {
			continue // derived (extents) or from a newer writer
		}
		if err := json.Unmarshal(raw, t); err != nil {
			return fmt.Errorf("record field %s: %w", k, err)
		}
	}
	if cropZ != nil && cropY != nil && cropX != nil {
		r.CropOrigin = []int64{*cropZ, *cropY, *cropX}
	}
	return nil
}
