package mirror

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
)

// buildEMPIARXML turns the wire sample of EMPIAR-11759's entry XML (an
// xmltodict parse: "@x" attributes, "#text" element text, lists for repeated
// elements, null for empty ones) back into XML, in the sample's element order,
// with the accession, DOI and image count of the entry served.
func buildEMPIARXML(c Content) ([]byte, error) {
	raw, err := templates.ReadFile("templates/empiar-11759-entry-xml.xmltodict.json")
	if err != nil {
		return nil, fmt.Errorf("mirror: EMPIAR XML template: %w", err)
	}
	acc := "EMPIAR-" + c.EMPIARID
	images := 0
	for rel := range c.EMPIARFiles {
		rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
		if path.Dir(rel) == "data" && strings.EqualFold(path.Ext(rel), ".dm3") {
			images++
		}
	}
	var total int64
	for _, d := range c.EMPIARFiles {
		total += int64(len(d))
	}
	// The API's "1.2 GB" is the XML's <datasetSize units="GB">1.2</datasetSize>.
	sizeValue, sizeUnits, _ := strings.Cut(decimalSize(total), " ")
	subst := map[string]string{
		"entry/admin/datasetSize/@units":       sizeUnits,
		"entry/admin/datasetSize/#text":        sizeValue,
		"entry/@accessionCode":                 acc,
		"entry/admin/entryDOI":                 "10.6019/" + acc,
		"entry/imageSet/numImagesOrTiltSeries": strconv.Itoa(images),
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	d := json.NewDecoder(bytes.NewReader(raw))
	if _, err := d.Token(); err != nil { // the document object
		return nil, fmt.Errorf("mirror: EMPIAR XML template: %w", err)
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("mirror: EMPIAR XML template: %w", err)
		}
		if err := xmlElement(d, &b, k.(string), k.(string), subst); err != nil {
			return nil, fmt.Errorf("mirror: EMPIAR XML template: %w", err)
		}
	}
	return b.Bytes(), nil
}

// xmlElement writes the element name whose xmltodict value comes next in d.
func xmlElement(d *json.Decoder, w *bytes.Buffer, name, at string, subst map[string]string) error {
	t, err := d.Token()
	if err != nil {
		return err
	}
	switch v := t.(type) {
	case json.Delim:
		switch v {
		case '[': // a repeated element
			for d.More() {
				if err := xmlElement(d, w, name, at, subst); err != nil {
					return err
				}
			}
			_, err := d.Token()
			return err
		case '{':
			var attrs, body bytes.Buffer
			text := ""
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return err
				}
				k := kt.(string)
				switch {
				case strings.HasPrefix(k, "@"):
					s, err := scalar(d)
					if err != nil {
						return err
					}
					if r, ok := subst[at+"/"+k]; ok {
						s = r
					}
					fmt.Fprintf(&attrs, " %s=\"", k[1:])
					xml.EscapeText(&attrs, []byte(s))
					attrs.WriteByte('"')
				case k == "#text":
					if text, err = scalar(d); err != nil {
						return err
					}
					if r, ok := subst[at+"/#text"]; ok {
						text = r
					}
				default:
					if err := xmlElement(d, &body, k, at+"/"+k, subst); err != nil {
						return err
					}
				}
			}
			if _, err := d.Token(); err != nil {
				return err
			}
			fmt.Fprintf(w, "<%s%s>", name, attrs.Bytes())
			xml.EscapeText(w, []byte(text))
			w.Write(body.Bytes())
			fmt.Fprintf(w, "</%s>\n", name)
			return nil
		}
		return fmt.Errorf("unexpected %v", v)
	}
	s := ""
	if t != nil {
		s = fmt.Sprint(t)
	}
	if r, ok := subst[at]; ok {
		s = r
	}
	fmt.Fprintf(w, "<%s>", name)
	xml.EscapeText(w, []byte(s))
	fmt.Fprintf(w, "</%s>\n", name)
	return nil
}

// scalar reads a string, number, bool or null value as text.
func scalar(d *json.Decoder) (string, error) {
	t, err := d.Token()
	if err == io.EOF {
		return "", io.ErrUnexpectedEOF
	}
	if err != nil {
		return "", err
	}
	if _, ok := t.(json.Delim); ok {
		return "", fmt.Errorf("attribute or text is not a scalar")
	}
	if t == nil {
		return "", nil
	}
	return fmt.Sprint(t), nil
}
