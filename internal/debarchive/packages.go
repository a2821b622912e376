package debarchive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Package is one stanza of a Packages index: the fields bootstrapping
// needs, relations kept as text until bootstrap's resolver parses the few
// it reaches.
type Package struct {
	Name         string
	Version      string
	Architecture string
	Priority     string
	Essential    bool
	MultiArch    string
	Depends      string
	PreDepends   string
	Provides     string
	Filename     string
	Size         int64
	MD5          string
	SHA1         string
	SHA256       string
	// Component is where the index that listed it came from (main).
	Component string
}

// Sum is the package file's size and checksums.
func (p *Package) Sum() FileSum {
	return FileSum{Size: p.Size, MD5: p.MD5, SHA1: p.SHA1, SHA256: p.SHA256}
}

// ID names the package in messages: name version.
func (p *Package) ID() string { return p.Name + " " + p.Version }

// maxField bounds one field of an index: real ones stay far below, and an
// index that is nothing but one line must not exhaust memory.
const maxField = 1 << 20

// ParsePackages reads a Packages index. It is strict where a mistake would
// install the wrong file (a stanza without Package, Version or Filename, a
// bad size or checksum) and lenient elsewhere: fields it does not need are
// skipped unread.
func ParsePackages(r io.Reader, component string) ([]*Package, error) {
	br := bufio.NewReaderSize(r, 256*1024)
	var (
		out     []*Package
		cur     *Package
		curKey  string
		lineNo  int
		startNo int
		long    []byte
	)
	intern := map[string]string{}
	in := func(s []byte) string {
		// Architecture, Priority and the like repeat thousands of times.
		if v, ok := intern[string(s)]; ok {
			return v
		}
		v := string(s)
		intern[v] = v
		return v
	}
	finish := func() error {
		if cur == nil {
			return nil
		}
		p := cur
		cur, curKey = nil, ""
		switch {
		case p.Name == "":
			return fmt.Errorf("%w: Packages stanza at line %d has no Package field", ErrMalformed, startNo)
		case p.Version == "":
			return fmt.Errorf("%w: Packages stanza for %s (line %d) has no Version", ErrMalformed, p.Name, startNo)
		case p.Filename == "":
			return fmt.Errorf("%w: Packages stanza for %s (line %d) has no Filename", ErrMalformed, p.Name, startNo)
		}
		out = append(out, p)
		return nil
	}
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
				if len(long) > maxField {
					return nil, fmt.Errorf("%w: Packages line %d is longer than %d bytes", ErrMalformed, lineNo+1, maxField)
				}
			}
			line = long
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if len(line) == 0 && err == io.EOF {
			break
		}
		lineNo++
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(bytes.TrimSpace(line)) == 0:
			if err := finish(); err != nil {
				return nil, err
			}
		case line[0] == ' ' || line[0] == '\t':
			if cur == nil {
				return nil, fmt.Errorf("%w: Packages line %d continues no field", ErrMalformed, lineNo)
			}
			// Only relation fields are kept across lines (some tools fold
			// long Depends); Description and the rest are skipped.
			switch curKey {
			case "depends":
				cur.Depends += " " + string(bytes.TrimSpace(line))
			case "pre-depends":
				cur.PreDepends += " " + string(bytes.TrimSpace(line))
			case "provides":
				cur.Provides += " " + string(bytes.TrimSpace(line))
			}
		case line[0] == '#':
			// Comments are not in Debian's indexes, but deb822 allows them.
		default:
			k, v, ok := bytes.Cut(line, []byte{':'})
			if !ok {
				return nil, fmt.Errorf("%w: Packages line %d: %q is not a field", ErrMalformed, lineNo, truncate(string(line), 60))
			}
			if cur == nil {
				cur = &Package{Component: component}
				startNo = lineNo
			}
			curKey = fieldKey(bytes.TrimSpace(k))
			v = bytes.TrimSpace(v)
			if err := cur.set(curKey, v, in); err != nil {
				return nil, fmt.Errorf("%w: Packages line %d: %v", ErrMalformed, lineNo, err)
			}
		}
		if err == io.EOF {
			break
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return out, nil
}

// packageFields are the fields the resolver uses, by their usual spelling;
// the map lookup of string(k) does not allocate.
var packageFields = func() map[string]string {
	m := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Priority", "Essential", "Multi-Arch",
		"Depends", "Pre-Depends", "Provides", "Filename", "Size", "MD5sum", "SHA1", "SHA256"} {
		m[f] = strings.ToLower(f)
		m[strings.ToLower(f)] = strings.ToLower(f)
	}
	return m
}()

// fieldKey is the lowercase name of a field the resolver uses, or "" for
// the others (Description and the like, which are never kept). Field
// names are case-insensitive; lowercasing every one cost a fifth of the
// parse.
func fieldKey(k []byte) string {
	if key, ok := packageFields[string(k)]; ok {
		return key
	}
	return packageFields[strings.ToLower(string(k))]
}

func (p *Package) set(key string, v []byte, in func([]byte) string) error {
	switch key {
	case "package":
		p.Name = string(v)
	case "version":
		p.Version = string(v)
	case "architecture":
		p.Architecture = in(v)
	case "priority":
		p.Priority = in(v)
	case "essential":
		p.Essential = string(v) == "yes"
	case "multi-arch":
		p.MultiArch = in(v)
	case "depends":
		p.Depends = string(v)
	case "pre-depends":
		p.PreDepends = string(v)
	case "provides":
		p.Provides = string(v)
	case "filename":
		p.Filename = string(v)
	case "size":
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("size %q of %s is not a number", v, p.Name)
		}
		p.Size = n
	case "md5sum":
		return SetChecksum(&p.MD5, "md5", v)
	case "sha1":
		return SetChecksum(&p.SHA1, "sha1", v)
	case "sha256":
		return SetChecksum(&p.SHA256, "sha256", v)
	}
	return nil
}
