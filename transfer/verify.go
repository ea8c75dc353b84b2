package transfer

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/imgdataset/imgdataset/store"
)

// This file verifies downloaded bytes (size, MD5, CRC32C, sha256) and
// commits verified files into place.

// etagMD5 returns the MD5 an S3 ETag carries: only a plain 32-hex ETag of a
// single-part upload is the MD5 of the content ("…-N" marks a multipart one).
func etagMD5(etag string) []byte {
	if len(etag) != 32 {
		return nil
	}
	b, err := hex.DecodeString(etag)
	if err != nil {
		return nil
	}
	return b
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// finish verifies a fully assembled part file and moves it into place. The
// final Stat catches an object replaced while its ranges were being fetched.
func (r *run) finish(ctx context.Context, o *object) error {
	info, err := r.stat(ctx, o)
	if err != nil {
		return err
	}
	if r.changedFrom(o, info) {
		return fmt.Errorf("%w: size %d → %d, ETag %q → %q", errChanged, o.size, info.Size, o.etag, store.CleanETag(info.ETag))
	}
	wantMD5 := r.wantMD5(o)
	// The hasher has followed the ranges as they arrived; only the bytes that
	// came last are left to hash.
	sum, md, crc, n, err := o.hash.wait(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return local(err)
	}
	if n != o.size {
		return fmt.Errorf("%w: part file holds %d bytes, want %d", errVerify, n, o.size)
	}
	if err := r.verifySums(o, md, crc, wantMD5); err != nil {
		return err
	}
	f := o.file
	o.file = nil
	return r.commit(o, f, o.size, sum, o.etag)
}

// wantMD5 is the MD5 the content must have, if known.
func (r *run) wantMD5(o *object) []byte {
	if r.opt.NoVerify {
		return nil
	}
	if len(o.md5) == 16 {
		return o.md5
	}
	if o.etagIsMD5 {
		return etagMD5(o.etag)
	}
	return nil
}

func (r *run) verifySums(o *object, md, crc hash.Hash, wantMD5 []byte) error {
	if md != nil {
		if got := md.Sum(nil); !bytes.Equal(got, wantMD5) {
			return fmt.Errorf("%w: MD5 %x, want %x", errVerify, got, wantMD5)
		}
	}
	if crc != nil {
		if got := crc.(hash.Hash32).Sum32(); got != o.crc {
			return fmt.Errorf("%w: CRC32C %08x, want %08x", errVerify, got, o.crc)
		}
	}
	return nil
}

// sums computes the checksums of a stream of bytes: sha256 always (the
// catalog records it), MD5 and CRC32C when there is something to compare
// them with. Writing to it writes to all of them.
type sums struct {
	io.Writer
	sha, md, crc hash.Hash // md and crc are nil when not wanted
}

func newSums(withMD5, withCRC bool) *sums {
	s := &sums{sha: sha256.New()}
	ws := []io.Writer{s.sha}
	if withMD5 {
		s.md = md5.New()
		ws = append(ws, s.md)
	}
	if withCRC {
		s.crc = crc32.New(crcTable)
		ws = append(ws, s.crc)
	}
	s.Writer = io.MultiWriter(ws...)
	return s
}

// sha256 is the hex SHA-256 of what was written.
func (s *sums) sha256() string { return hex.EncodeToString(s.sha.Sum(nil)) }

// hashReader streams r once through sha256.
func hashReader(ctx context.Context, rd io.Reader, buf []byte) (sum string, n int64, err error) {
	s := newSums(false, false)
	for {
		if err := ctx.Err(); err != nil {
			return "", n, err
		}
		m, rerr := rd.Read(buf)
		if m > 0 {
			s.Write(buf[:m])
			n += int64(m)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", n, rerr
		}
	}
	return s.sha256(), n, nil
}

// commit makes a verified file final: fsync, rename into place (refusing
// symlinked directories on the way), fsync the directory, journal it.
func (r *run) commit(o *object, f *os.File, size int64, sum, etag string) error {
	tmp := f.Name()
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ensureDir(r.out, o.ds.name+"/"+parentRel(o.path))
	}
	if err == nil {
		if fi, lerr := os.Lstat(o.final); lerr == nil && fi.IsDir() {
			err = fmt.Errorf("%s is a directory", o.final)
		}
	}
	if err == nil {
		err = os.Rename(tmp, o.final)
	}
	// The directory is fsynced once at the end of the run, not per file: if a
	// crash loses the rename, the journal's done record fails doneValid and the
	// object is fetched again, which is safe.
	if err == nil {
		r.dirtyDir(filepath.Dir(o.final))
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = os.Lstat(o.final)
	}
	if err != nil {
		os.Remove(tmp)
		return local(fmt.Errorf("commit %s: %w", o.final, err))
	}
	lastMod := o.lastMod
	if !o.ranged && o.answerLastMod != 0 {
		lastMod = o.answerLastMod // the answer the bytes came from
	}
	if err := r.j.append(record{T: recDone, Dataset: o.ds.name, Path: o.path, Size: size, SHA256: sum, ETag: etag, LastMod: lastMod, MTime: fi.ModTime().UnixNano()}); err != nil {
		return local(err)
	}
	o.res.Size = size
	o.res.SHA256 = sum
	o.haveBytes.Store(size)
	return nil
}
