package tiff

import (
	"strconv"
	"strings"

	"github.com/imgdataset/imgdataset/volume"
)

// scanImageState parses the "SI.key = value" lines ScanImage (2016 and
// later) writes in the Software tag; nil when the tag is not ScanImage's.
func scanImageState(software string) map[string]string {
	if !strings.HasPrefix(software, "SI.") {
		return nil
	}
	kv := map[string]string{}
	for _, line := range strings.Split(software, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok {
			kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return kv
}

// scanImageSeries stacks a ScanImage acquisition as tifffile does: pages
// are interleaved channels, then frames of one slice, then slices; axes of
// size 1 are dropped. It returns nil when the state does not fit the pages.
func (r *reader) scanImageSeries(g group, si map[string]string) (*tiffVolume, int) {
	save, ok := si["SI.hChannels.channelSave"]
	if !ok {
		return nil, 0
	}
	// A MATLAB scalar ("1") or vector ("[1;2]", "[1 2]").
	channels := int64(len(strings.FieldsFunc(strings.Trim(save, "[]"), func(r rune) bool { return r == ';' || r == ' ' || r == ',' })))
	n := int64(len(g.pages))
	if channels < 1 || channels > n {
		return nil, 0
	}
	frames, err := strconv.ParseInt(si["SI.hStackManager.framesPerSlice"], 10, 64)
	slices := int64(0)
	if err != nil || frames < 1 {
		// framesPerSlice is Inf for continuous acquisitions.
		if n%channels != 0 {
			return nil, 0
		}
		frames, slices = n/channels, 1
	}
	if frames > n {
		return nil, 0
	}
	if slices == 0 {
		slices = max(n/(frames*channels), 1)
	}
	used, ok := mul(slices, frames, channels)
	if !ok || used > n {
		return nil, 0
	}
	var lead []volume.Axis
	for _, a := range []volume.Axis{{Name: "z", Size: slices}, {Name: "t", Size: frames}, {Name: "c", Size: channels}} {
		if a.Size > 1 {
			a.Scale = 1
			lead = append(lead, a)
		}
	}
	v := r.newVolume(g.pages[:used], g.meta, lead)
	v.info.Metadata["scanimage"] = map[string]any{"channels": channels, "frames_per_slice": frames, "slices": slices}
	return v, int(used)
}
