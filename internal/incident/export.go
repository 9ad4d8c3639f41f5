package incident

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/ward-runtime/ward/internal/bounded"
)

// ErrModified means a bundle's files no longer match its manifest.
var ErrModified = errors.New("incident bundle modified")

// Verify checks every file of a bundle against its manifest: each listed
// file present with its size and sha256, nothing else beside them but the
// manifest and SHA256SUMS.
func (s Store) Verify(id string) error {
	m, err := s.Manifest(id)
	if err != nil {
		return err
	}
	dir, _ := s.path(id)
	var errs []error
	listed := map[string]bool{ManifestName: true, SumsName: true}
	for _, f := range m.Files {
		listed[f.Name] = true
		sum, size, err := digest(filepath.Join(dir, f.Name))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", f.Name, err))
		case sum != f.SHA256 || size != f.Size:
			errs = append(errs, fmt.Errorf("%s: sha256 %s (%d bytes), manifest says %s (%d bytes)", f.Name, sum, size, f.SHA256, f.Size))
		}
	}
	names, err := fileNames(dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if !listed[n] {
			errs = append(errs, fmt.Errorf("%s: not in the manifest", n))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("incident %s: %w: %w", id, ErrModified, errors.Join(errs...))
	}
	return nil
}

// digest is a regular file's sha256 and size; anything else is refused.
func digest(path string) (string, int64, error) {
	f, err := bounded.OpenNoFollow(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("not a regular file")
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// fileNames lists a bundle directory, sorted.
func fileNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading incident bundle: %w", err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names, nil
}

// Export writes a bundle to w as a gzipped tar of <id>/<file>, after
// verifying it: an export is whole and unmodified, or not made. Entries are
// sorted, owned by 0:0, dated at the incident's time, so two exports of a
// bundle are identical.
func (s Store) Export(id string, w io.Writer) error {
	if err := s.Verify(id); err != nil {
		return err
	}
	m, err := s.Manifest(id)
	if err != nil {
		return err
	}
	dir, _ := s.path(id)
	names, err := fileNames(dir)
	if err != nil {
		return err
	}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	hdr := func(name string, mode int64, typ byte, size int64) *tar.Header {
		return &tar.Header{Name: name, Mode: mode, Typeflag: typ, Size: size, ModTime: m.Time, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(id+"/", 0o700, tar.TypeDir, 0)); err != nil {
		return fmt.Errorf("exporting incident %s: %w", id, err)
	}
	for _, n := range names {
		if err := addFile(tw, filepath.Join(dir, n), hdr(id+"/"+n, 0o600, tar.TypeReg, 0)); err != nil {
			return fmt.Errorf("exporting incident %s: %s: %w", id, n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("exporting incident %s: %w", id, err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("exporting incident %s: %w", id, err)
	}
	return nil
}

func addFile(tw *tar.Writer, path string, h *tar.Header) error {
	f, err := bounded.OpenNoFollow(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h.Size = fi.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	// Exactly Size bytes: a file growing meanwhile cannot corrupt the tar.
	_, err = io.CopyN(tw, f, h.Size)
	return err
}
