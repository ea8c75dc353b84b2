package mirror

import (
	"path"
	"strings"
	"time"
)

// File times on the FTP mirror: the EMPIAR release day and the day idr0086's
// "20200610-ftp" folder is named after. Fixed so listings are reproducible.
var (
	empiarFileTime = time.Date(2024, 1, 15, 10, 31, 0, 0, time.UTC)
	idrFileTime    = time.Date(2020, 6, 10, 14, 2, 0, 0, time.UTC)
)

// newEBITree lays out the ftp.ebi.ac.uk stand-in: EMPIAR files under
// /empiar/world_availability/<id>/ with the entry XML as <id>.xml beside
// data/, and the IDR TIFFs at their client paths with /uod/idr/filesets/
// replaced by /pub/databases/IDR/.
func newEBITree(c Content, imgs []IDRImage) (*fileTree, error) {
	t := newFileTree()
	root := "/empiar/world_availability/" + c.EMPIARID + "/"
	entryXML, err := buildEMPIARXML(c)
	if err != nil {
		return nil, err
	}
	t.add(root+c.EMPIARID+".xml", memFile{data: entryXML, mod: empiarFileTime})
	for rel, data := range c.EMPIARFiles {
		rel = path.Clean("/" + rel)
		t.add(root+strings.TrimPrefix(rel, "/"), memFile{data: data, mod: empiarFileTime})
	}
	t.addDir(root) // the entry folder exists even when empty
	for _, img := range imgs {
		rel := path.Clean("/" + strings.TrimPrefix(img.ClientPath, idrFilesetsPrefix))
		t.add("/pub/databases/IDR"+rel, memFile{data: img.Data, mod: idrFileTime})
	}
	return t, nil
}
