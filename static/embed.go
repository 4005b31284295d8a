// Package static holds gatecheck's stylesheet and script, embedded, served
// under names that carry a hash of their content so browsers may cache them
// for ever.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"path"
	"strings"
)

//go:embed *.css *.js *.svg
var files embed.FS

// FS holds the files under their plain names.
var FS fs.FS = files

var hashed = map[string]string{} // plain name -> name with hash
var plain = map[string]string{}  // name with hash -> plain name

func init() {
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		data, _ := fs.ReadFile(files, e.Name())
		sum := sha256.Sum256(data)
		ext := path.Ext(e.Name())
		h := strings.TrimSuffix(e.Name(), ext) + "." + hex.EncodeToString(sum[:])[:10] + ext
		hashed[e.Name()] = h
		plain[h] = e.Name()
	}
}

// URL returns the path of a static file with its content hash.
func URL(name string) string {
	if h, ok := hashed[name]; ok {
		return "/static/" + h
	}
	return "/static/" + name
}

// Lookup returns the plain name of a hashed name, and whether it is one.
func Lookup(hashedName string) (string, bool) {
	p, ok := plain[hashedName]
	return p, ok
}
