package mirror

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"image"
	"image/jpeg"
	"math"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// idr0086Processed is where idr0086 experimentD's processed TIFFs were imported
// from (formats.md §5.5); the FTP mirror serves the same tree.
const idr0086Processed = "/uod/idr/filesets/idr0086-miron-micrographs/20200610-ftp/experimentD/Miron_FIB-SEM/Miron_FIB-SEM_processed/"

// idrFilesetsPrefix is replaced by /pub/databases/IDR/ on the FTP mirror.
const idrFilesetsPrefix = "/uod/idr/filesets/"

const omeSchema = "http://www.openmicroscopy.org/Schemas/OME/2016-06"

// omero-web's JSON API pagination (formats.md §5.2).
const (
	omeroDefaultLimit = 200
	omeroMaxLimit     = 500
)

// idrServer imitates OMERO.web as IDR runs it: public JSON without login, a
// session cookie from /webclient/?experimenter=-1.
type idrServer struct {
	base     string
	images   []IDRImage // sorted by name, then id
	byID     map[int64]int
	tiffs    map[int64]*tiffInfo
	sessions atomic.Int64
}

func newIDR(imgs []IDRImage, base string) (*idrServer, error) {
	s := &idrServer{base: base, byID: map[int64]int{}, tiffs: map[int64]*tiffInfo{}}
	for _, img := range imgs {
		if _, dup := s.byID[img.ID]; dup {
			return nil, fmt.Errorf("mirror: IDR image %d given twice", img.ID)
		}
		if img.ClientPath == "" {
			img.ClientPath = idr0086Processed + img.Name
		}
		if !strings.HasPrefix(img.ClientPath, idrFilesetsPrefix) {
			return nil, fmt.Errorf("mirror: IDR image %d: client path %q is not under %s", img.ID, img.ClientPath, idrFilesetsPrefix)
		}
		if ti, err := parseTIFF(img.Data); err == nil {
			s.tiffs[img.ID] = ti
			p := ti.pages[0]
			if img.SizeX == 0 {
				img.SizeX = p.width
			}
			if img.SizeY == 0 {
				img.SizeY = p.height
			}
			if img.SizeZ == 0 {
				img.SizeZ = len(ti.pages)
			}
			if img.PixelsType == "" {
				img.PixelsType = map[int]string{8: "uint8", 16: "uint16", 32: "float"}[p.bitsPerSample]
			}
		}
		img.SizeX, img.SizeY = max(img.SizeX, 1), max(img.SizeY, 1)
		img.SizeZ, img.SizeC, img.SizeT = max(img.SizeZ, 1), max(img.SizeC, 1), max(img.SizeT, 1)
		if img.PixelsType == "" {
			img.PixelsType = "uint8"
		}
		if img.Name == "" {
			img.Name = path.Base(img.ClientPath)
		}
		s.images = append(s.images, img)
	}
	// OMERO lists images by name.
	sort.SliceStable(s.images, func(i, j int) bool {
		a, b := s.images[i], s.images[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.ID < b.ID
	})
	for i, img := range s.images {
		s.byID[img.ID] = i
	}
	return s, nil
}

func (s *idrServer) image(id int64) (*IDRImage, bool) {
	i, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	return &s.images[i], true
}

// idArg parses a path segment as an OMERO object id.
func idArg(seg string) (int64, bool) {
	id, err := strconv.ParseInt(seg, 10, 64)
	return id, err == nil && id >= 0
}

func (s *idrServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !onlyGET(w, r) {
		return
	}
	p := r.URL.Path
	segs := strings.Split(strings.Trim(p, "/"), "/")
	trailing := strings.HasSuffix(p, "/")
	api := func(parts ...string) bool { // exact match with "*" as an id wildcard
		if len(segs) != len(parts) || !trailing {
			return false
		}
		for i, want := range parts {
			if want == "*" {
				if _, ok := idArg(segs[i]); !ok {
					return false
				}
			} else if segs[i] != want {
				return false
			}
		}
		return true
	}
	id := func(i int) int64 { v, _ := idArg(segs[i]); return v }
	switch {
	case p == "/" || p == "/webclient/" || p == "/webclient":
		s.webclientHome(w, r)
	case api("api"):
		w.Header().Set("X-OMERO-ApiVersion", "0.2")
		writeJSON(w, r, http.StatusOK, map[string]any{"data": []any{map[string]any{"version": "0", "url:base": s.base + "/api/v0/"}}})
	case api("api", "v0"):
		b := s.base + "/api/v0/"
		writeJSON(w, r, http.StatusOK, map[string]any{
			"url:login": b + "login/", "url:save": b + "m/save/", "url:projects": b + "m/projects/",
			"url:plates": b + "m/plates/", "url:datasets": b + "m/datasets/", "url:token": b + "token/",
			"url:schema": omeSchema, "url:screens": b + "m/screens/", "url:servers": b + "servers/",
			"url:images": b + "m/images/",
		})
	case api("api", "v0", "m", "images"):
		q := r.URL.Query()
		did := int64(-1)
		if v := q.Get("dataset"); v != "" {
			d, ok := idArg(v)
			if !ok {
				writeJSON(w, r, http.StatusBadRequest, map[string]any{"message": "Invalid parameter value: dataset=" + v})
				return
			}
			did = d
		}
		s.imageList(w, r, did)
	case api("api", "v0", "m", "images", "*"):
		img, ok := s.image(id(4))
		if !ok {
			writeJSON(w, r, http.StatusNotFound, map[string]any{"message": fmt.Sprintf("Image %d not found", id(4))})
			return
		}
		writeJSON(w, r, http.StatusOK, map[string]any{"data": s.imageJSON(img, true)})
	case api("api", "v0", "m", "datasets", "*"):
		s.dataset(w, r, id(4))
	case api("api", "v0", "m", "datasets", "*", "images"):
		s.imageList(w, r, id(4))
	case api("webclient", "img_detail", "*"):
		s.imgDetail(w, r, id(2))
	case api("webclient", "imgData", "*"), api("webgateway", "imgData", "*"):
		img, ok := s.image(id(2))
		if !ok {
			http.Error(w, "Image not found", http.StatusNotFound)
			return
		}
		writeJSON(w, r, http.StatusOK, s.imgData(img))
	case api("webgateway", "original_file_paths", "*"):
		img, ok := s.image(id(2))
		if !ok {
			http.Error(w, "Image not found", http.StatusNotFound)
			return
		}
		writeJSON(w, r, http.StatusOK, map[string]any{
			"repo":    []string{idrRepoPath(img)},
			"client":  []string{img.ClientPath},
			"fileset": map[string]any{"id": idrFilesetID(img)},
		})
	case len(segs) >= 3 && len(segs) <= 5 && segs[0] == "webgateway" && segs[1] == "render_image" && trailing:
		s.renderImage(w, r, segs[2:])
	default:
		http.Error(w, "Not Found", http.StatusNotFound)
	}
}

// webclientHome creates the anonymous "public user" session IDR hands out.
func (s *idrServer) webclientHome(w http.ResponseWriter, r *http.Request) {
	n := s.sessions.Add(1)
	sum := sha256.Sum256([]byte("idr-mirror-session-" + strconv.FormatInt(n, 10)))
	sid := hex.EncodeToString(sum[:16])
	csrf := hex.EncodeToString(sum[16:])
	http.SetCookie(w, &http.Cookie{Name: "csrftoken", Value: csrf, Path: "/", SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: "sessionid", Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	body := "<!DOCTYPE html>\n<html><head><title>Webclient</title></head>\n<body class=\"webclient\">\n<div id=\"left_panel\"></div>\n<p>Logged in as Public data</p>\n</body></html>\n"
	writeBody(w, r, http.StatusOK, "text/html; charset=utf-8", []byte(body))
}

// omeroDetails is the omero:details block, trimmed to its usual public-user
// values (the captured samples elide it).
func omeroDetails() map[string]any {
	return map[string]any{
		"@type": "TBD#Details",
		"owner": map[string]any{"@id": 2, "@type": omeSchema + "#Experimenter", "FirstName": "Public", "LastName": "data", "UserName": "public"},
		"group": map[string]any{"@id": 3, "@type": omeSchema + "#ExperimenterGroup", "Name": "Public"},
		"permissions": map[string]any{
			"@type": "TBD#Permissions", "perm": "r-r---", "canAnnotate": false, "canDelete": false, "canEdit": false, "canLink": false,
			"isGroupAnnotate": false, "isGroupRead": true, "isGroupWrite": false, "isUserRead": true, "isUserWrite": true,
			"isWorldRead": false, "isWorldWrite": false,
		},
	}
}

func lengthJSON(um float64) map[string]any {
	return map[string]any{"Symbol": "µm", "Value": um, "@type": "TBD#LengthI", "Unit": "MICROMETER"}
}

func significantBits(pt string) int {
	switch pt {
	case "int8", "uint8", "bit":
		return 8
	case "int16", "uint16":
		return 16
	case "double":
		return 64
	}
	return 32
}

// imageJSON marshals an image like omero-marshal (formats.md §5.2): unknown
// physical sizes are omitted, single-image GETs add Channels.
func (s *idrServer) imageJSON(img *IDRImage, channels bool) map[string]any {
	sha := sha1.Sum(img.Data)
	px := map[string]any{
		"@id": img.ID, "@type": omeSchema + "#Pixels",
		"SizeX": img.SizeX, "SizeY": img.SizeY, "SizeZ": img.SizeZ, "SizeC": img.SizeC, "SizeT": img.SizeT,
		"Type":            map[string]any{"@id": 1, "@type": "TBD#PixelsType", "value": img.PixelsType, "omero:details": map[string]any{"@type": "TBD#Details"}},
		"SignificantBits": significantBits(img.PixelsType),
		"omero:sha1":      hex.EncodeToString(sha[:]),
		"omero:details":   omeroDetails(),
	}
	for i, k := range []string{"PhysicalSizeX", "PhysicalSizeY", "PhysicalSizeZ"} {
		if v := img.PhysicalSizeUM[i]; v > 0 {
			px[k] = lengthJSON(v)
		}
	}
	if channels {
		var chs []any
		for c := range img.SizeC {
			chs = append(chs, map[string]any{
				"@id": img.ID*10 + int64(c), "@type": omeSchema + "#Channel",
				"Name": strconv.Itoa(c), "Color": -1, "SamplesPerPixel": 1,
				"omero:LogicalChannelId": img.ID*10 + int64(c), "omero:details": map[string]any{},
				"omero:photometricInterpretation": map[string]any{"@id": 5, "@type": "TBD#PhotometricInterpretation", "value": "Monochrome", "omero:details": map[string]any{}},
			})
		}
		px["Channels"] = chs
	}
	return map[string]any{
		"@id": img.ID, "@type": omeSchema + "#Image",
		"Name": img.Name, "Description": "",
		"omero:series":  0,
		"url:image":     fmt.Sprintf("%s/api/v0/m/images/%d/", s.base, img.ID),
		"omero:details": omeroDetails(),
		"Pixels":        px,
	}
}

// imageList answers /m/images/?dataset= and /m/datasets/{id}/images/ with
// OMERO's limit/offset paging. did < 0 lists every image.
func (s *idrServer) imageList(w http.ResponseWriter, r *http.Request, did int64) {
	q := r.URL.Query()
	limit, offset := omeroDefaultLimit, 0
	for _, kv := range []struct {
		name string
		dst  *int
	}{{"limit", &limit}, {"offset", &offset}} {
		if v := q.Get(kv.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				writeJSON(w, r, http.StatusBadRequest, map[string]any{"message": fmt.Sprintf("invalid literal for int() with base 10: '%s'", v)})
				return
			}
			*kv.dst = n
		}
	}
	if limit == 0 || limit > omeroMaxLimit {
		limit = omeroMaxLimit
	}
	var all []*IDRImage
	for i := range s.images {
		if did < 0 || s.images[i].DatasetID == did {
			all = append(all, &s.images[i])
		}
	}
	data := []any{}
	for i := offset; i < len(all) && i < offset+limit; i++ {
		data = append(data, s.imageJSON(all[i], false))
	}
	writeJSON(w, r, http.StatusOK, map[string]any{
		"data": data,
		"meta": map[string]any{"totalCount": len(all), "limit": limit, "offset": offset, "maxLimit": omeroMaxLimit},
	})
}

func (s *idrServer) dataset(w http.ResponseWriter, r *http.Request, did int64) {
	for i := range s.images {
		img := &s.images[i]
		if img.DatasetID != did {
			continue
		}
		writeJSON(w, r, http.StatusOK, map[string]any{"data": map[string]any{
			"@id": did, "@type": omeSchema + "#Dataset",
			"Name": img.DatasetName, "Description": img.DatasetDescription,
			"url:images":    fmt.Sprintf("%s/api/v0/m/datasets/%d/images/", s.base, did),
			"url:projects":  fmt.Sprintf("%s/api/v0/m/datasets/%d/projects/", s.base, did),
			"omero:details": omeroDetails(),
		}})
		return
	}
	writeJSON(w, r, http.StatusNotFound, map[string]any{"message": fmt.Sprintf("Dataset %d not found", did)})
}

// imgDetail is the full-viewer HTML page; its markup is not from a capture
// (none exists), only its title and ids matter to anyone.
func (s *idrServer) imgDetail(w http.ResponseWriter, r *http.Request, iid int64) {
	img, ok := s.image(iid)
	if !ok {
		http.Error(w, "Image not found", http.StatusNotFound)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html>\n<head>\n<title>%s</title>\n", html.EscapeString(img.Name))
	fmt.Fprintf(&b, "<script>\n  var imageId = %d;\n  var datasetId = %d;\n  var imgDataUrl = \"/webgateway/imgData/%d/\";\n</script>\n", img.ID, img.DatasetID, img.ID)
	fmt.Fprintf(&b, "</head>\n<body>\n<div id=\"viewport\" data-image-id=\"%d\"></div>\n<h1 id=\"image-name\">%s</h1>\n</body>\n</html>\n", img.ID, html.EscapeString(img.Name))
	writeBody(w, r, http.StatusOK, "text/html; charset=utf-8", []byte(b.String()))
}

func pixelRange(pt string) [2]int64 {
	switch pt {
	case "int8":
		return [2]int64{-128, 127}
	case "uint8":
		return [2]int64{0, 255}
	case "int16":
		return [2]int64{-32768, 32767}
	case "uint16":
		return [2]int64{0, 65535}
	case "int32":
		return [2]int64{-2147483648, 2147483647}
	case "uint32":
		return [2]int64{0, 4294967295}
	}
	return [2]int64{0, 1}
}

// imgData builds the webgateway/webclient imgData body with exactly the keys of
// the 9762957 wire sample (checked by a test), values per marshal.py
// imageMarshal: pixel sizes in µm or null.
func (s *idrServer) imgData(img *IDRImage) map[string]any {
	pr := pixelRange(img.PixelsType)
	color := "808080"
	model := "greyscale"
	if img.SizeC > 1 {
		model = "color"
	}
	var chs []any
	for c := range img.SizeC {
		chs = append(chs, map[string]any{
			"active": true, "coefficient": 1.0, "color": color, "emissionWave": nil, "family": "linear",
			"inverted": false, "label": strconv.Itoa(c), "reverseIntensity": false,
			"window": map[string]any{"end": float64(pr[1]), "max": float64(pr[1]), "min": float64(pr[0]), "start": float64(pr[0])},
		})
	}
	ps := map[string]any{}
	for i, k := range []string{"x", "y", "z"} {
		if v := img.PhysicalSizeUM[i]; v > 0 {
			ps[k] = v
		} else {
			ps[k] = nil
		}
	}
	var projectID any
	if img.ProjectID > 0 {
		projectID = img.ProjectID
	}
	gx := int(math.Ceil(math.Sqrt(float64(img.SizeC + 1))))
	gy := (img.SizeC + gx) / gx
	split := func(gx, gy int) map[string]any {
		return map[string]any{"border": 2, "gridx": gx, "gridy": gy, "width": gx*(img.SizeX+2) + 2, "height": gy*(img.SizeY+2) + 2}
	}
	return map[string]any{
		"channels":    chs,
		"id":          img.ID,
		"init_zoom":   0,
		"interpolate": true,
		"meta": map[string]any{
			"datasetDescription": img.DatasetDescription, "datasetId": img.DatasetID, "datasetName": img.DatasetName,
			"imageAuthor": "Public data", "imageDescription": "", "imageId": img.ID, "imageName": img.Name,
			"imageTimestamp": 1.5917e9, "pixelsType": img.PixelsType, "projectDescription": "", "projectId": projectID,
			"projectName": img.ProjectName, "wellId": "", "wellSampleId": "",
		},
		"perms":       map[string]any{"canAnnotate": false, "canDelete": false, "canEdit": false, "canLink": false},
		"pixel_range": pr,
		"pixel_size":  ps,
		"rdefs":       map[string]any{"defaultT": 0, "defaultZ": img.SizeZ / 2, "invertAxis": false, "model": model, "projection": "normal"},
		"size":        map[string]any{"c": img.SizeC, "height": img.SizeY, "t": img.SizeT, "width": img.SizeX, "z": img.SizeZ},
		"split_channel": map[string]any{
			"c": split(gx, gy),
			"g": split(gx, (img.SizeC+gx-1)/gx),
		},
		"tiles": false,
	}
}

// idrRepoPath imitates an OMERO managed-repository path; the real template
// for IDR was never captured (wire-samples README, "Not found").
func idrRepoPath(img *IDRImage) string {
	return fmt.Sprintf("demo_2/2020-06/10/12-00-00.000/%s", path.Base(img.ClientPath))
}

func idrFilesetID(img *IDRImage) int64 { return 5000000 + img.ID%1000000 }

// renderImage draws plane z (of t) as a JPEG, lossy like omero-web's
// render_image. Accepts /{iid}/, /{iid}/{z}/ and /{iid}/{z}/{t}/, and the
// window of ?c=1|start:end$COLOR.
func (s *idrServer) renderImage(w http.ResponseWriter, r *http.Request, segs []string) {
	iid, ok := idArg(segs[0])
	img, found := s.image(iid)
	if !ok || !found {
		http.Error(w, "Image not found", http.StatusNotFound)
		return
	}
	z, t := img.SizeZ/2, 0
	for i, dst := range []*int{&z, &t} {
		if len(segs) > i+1 {
			v, err := strconv.Atoi(segs[i+1])
			if err != nil || v < 0 {
				http.Error(w, "bad plane index", http.StatusBadRequest)
				return
			}
			*dst = v
		}
	}
	if z >= img.SizeZ || t >= img.SizeT {
		http.Error(w, fmt.Sprintf("plane z=%d t=%d outside %dx%d", z, t, img.SizeZ, img.SizeT), http.StatusBadRequest)
		return
	}
	pr := pixelRange(img.PixelsType)
	lo, hi := float64(pr[0]), float64(pr[1])
	if c := r.URL.Query().Get("c"); c != "" {
		if _, win, ok := strings.Cut(c, "|"); ok {
			win, _, _ = strings.Cut(win, "$")
			win, _, _ = strings.Cut(win, ",")
			a, b, _ := strings.Cut(win, ":")
			fa, ea := strconv.ParseFloat(a, 64)
			fb, eb := strconv.ParseFloat(b, 64)
			if ea == nil && eb == nil && fb > fa {
				lo, hi = fa, fb
			}
		}
	}
	quality := 90
	if q, err := strconv.ParseFloat(r.URL.Query().Get("q"), 64); err == nil && q > 0 && q <= 1 {
		quality = int(q * 100)
	}
	gray := image.NewGray(image.Rect(0, 0, img.SizeX, img.SizeY))
	// ImageJ page order: c fastest, then z, then t; channel 0 is drawn.
	page := (t*img.SizeZ + z) * img.SizeC
	if ti := s.tiffs[img.ID]; ti != nil {
		if px, pw, ph, err := ti.plane(img.Data, page); err == nil && pw == img.SizeX && ph == img.SizeY {
			for k, v := range px {
				f := (float64(v) - lo) / (hi - lo) * 255
				gray.Pix[k] = uint8(math.Max(0, math.Min(255, math.Round(f))))
			}
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, gray, &jpeg.Options{Quality: quality}); err != nil {
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, r, http.StatusOK, "image/jpeg", buf.Bytes())
}
