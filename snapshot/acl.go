package snapshot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strconv"
	"strings"
)

// POSIX ACLs live in the system.posix_acl_access and _default xattrs, in
// the kernel's binary form; krgimage stores that form as SCHILY.xattr
// records. GNU tar and bsdtar ignore those two records on extraction and
// read SCHILY.acl.access and SCHILY.acl.default, a text form, instead
// (checked with GNU tar 1.34 and bsdtar 3.6), so the writer adds the text
// too, with numeric qualifiers, which both accept.

const (
	xattrACLAccess  = "system.posix_acl_access"
	xattrACLDefault = "system.posix_acl_default"
)

const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
	aclUndefID  = 0xffffffff
	aclVersion  = 2
)

type aclEntry struct {
	tag  uint16
	perm uint16
	id   uint32
}

func parseACLXattr(b []byte) ([]aclEntry, error) {
	if len(b) < 4 || (len(b)-4)%8 != 0 || binary.LittleEndian.Uint32(b) != aclVersion {
		return nil, errors.New("malformed POSIX ACL xattr")
	}
	var es []aclEntry
	for p := b[4:]; len(p) > 0; p = p[8:] {
		es = append(es, aclEntry{binary.LittleEndian.Uint16(p), binary.LittleEndian.Uint16(p[2:]), binary.LittleEndian.Uint32(p[4:])})
	}
	return es, nil
}

func formatACLXattr(es []aclEntry) []byte {
	b := make([]byte, 4, 4+8*len(es))
	binary.LittleEndian.PutUint32(b, aclVersion)
	for _, e := range es {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// aclText renders an ACL xattr the way GNU tar writes SCHILY.acl records,
// with numeric qualifiers.
func aclText(xattr []byte) (string, error) {
	es, err := parseACLXattr(xattr)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, e := range es {
		var tag, q string
		switch e.tag {
		case aclUserObj:
			tag = "user"
		case aclUser:
			tag, q = "user", strconv.FormatUint(uint64(e.id), 10)
		case aclGroupObj:
			tag = "group"
		case aclGroup:
			tag, q = "group", strconv.FormatUint(uint64(e.id), 10)
		case aclMask:
			tag = "mask"
		case aclOther:
			tag = "other"
		default:
			return "", fmt.Errorf("unknown ACL tag %#x", e.tag)
		}
		perm := []byte("---")
		for i, c := range "rwx" {
			if e.perm&(4>>i) != 0 {
				perm[i] = byte(c)
			}
		}
		fmt.Fprintf(&b, "%s:%s:%s\n", tag, q, perm)
	}
	return b.String(), nil
}

// idLookup resolves a user or group name of an ACL text record. Only
// archives from other tools name users in ACLs; krgimage never does.
type idLookup func(group bool, name string) (uint32, error)

func hostIDLookup(group bool, name string) (uint32, error) {
	var id string
	if group {
		g, err := user.LookupGroup(name)
		if err != nil {
			return 0, err
		}
		id = g.Gid
	} else {
		u, err := user.Lookup(name)
		if err != nil {
			return 0, err
		}
		id = u.Uid
	}
	n, err := strconv.ParseUint(id, 10, 32)
	return uint32(n), err
}

// parseACLText parses GNU tar's form (entries separated by newlines,
// "user:1000:r-x" or "user:alice:r-x") and bsdtar's (separated by commas,
// "user:alice:r-x:1000") into the kernel's binary form, sorted as the
// kernel wants it, with a mask computed when named entries lack one.
func parseACLText(s string, lookup idLookup) ([]byte, error) {
	var es []aclEntry
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' }) {
		if i := strings.IndexByte(f, '#'); i >= 0 {
			f = f[:i]
		}
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		parts := strings.Split(f, ":")
		if len(parts) < 2 || len(parts) > 4 {
			return nil, fmt.Errorf("ACL entry %q", f)
		}
		tag, q, perm := parts[0], "", ""
		var idField string
		switch len(parts) {
		case 2: // "other:r--" as some writers put it
			perm = parts[1]
		case 3:
			q, perm = parts[1], parts[2]
		case 4:
			q, perm, idField = parts[1], parts[2], parts[3]
		}
		e := aclEntry{id: aclUndefID}
		group := false
		switch tag {
		case "user", "u":
			e.tag = aclUserObj
		case "group", "g":
			e.tag, group = aclGroupObj, true
		case "mask", "m":
			e.tag = aclMask
		case "other", "o":
			e.tag = aclOther
		default:
			return nil, fmt.Errorf("ACL entry %q: unknown tag", f)
		}
		if q != "" || idField != "" {
			if e.tag != aclUserObj && e.tag != aclGroupObj {
				return nil, fmt.Errorf("ACL entry %q: qualifier on %s", f, tag)
			}
			e.tag <<= 1 // user -> named user, group -> named group
			id, err := aclQualifier(q, idField, group, lookup)
			if err != nil {
				return nil, fmt.Errorf("ACL entry %q: %w", f, err)
			}
			e.id = id
		}
		if len(perm) != 3 {
			return nil, fmt.Errorf("ACL entry %q: permissions", f)
		}
		for i, c := range perm {
			switch {
			case c == rune("rwx"[i]):
				e.perm |= 4 >> i
			case c != '-':
				return nil, fmt.Errorf("ACL entry %q: permissions", f)
			}
		}
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b aclEntry) int {
		if a.tag != b.tag {
			return int(a.tag) - int(b.tag)
		}
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	var named, hasMask bool
	var class uint16
	for i, e := range es {
		if i > 0 && es[i-1].tag == e.tag && es[i-1].id == e.id {
			return nil, fmt.Errorf("ACL %q: duplicate entry", s)
		}
		switch e.tag {
		case aclUser, aclGroup:
			named = true
			class |= e.perm
		case aclGroupObj:
			class |= e.perm
		case aclMask:
			hasMask = true
		}
	}
	if named && !hasMask {
		i := slices.IndexFunc(es, func(e aclEntry) bool { return e.tag > aclMask })
		if i < 0 {
			i = len(es)
		}
		es = slices.Insert(es, i, aclEntry{tag: aclMask, perm: class, id: aclUndefID})
	}
	return formatACLXattr(es), nil
}

func aclQualifier(name, idField string, group bool, lookup idLookup) (uint32, error) {
	for _, s := range []string{idField, name} {
		if s == "" {
			continue
		}
		if n, err := strconv.ParseUint(s, 10, 32); err == nil {
			return uint32(n), nil
		}
	}
	if lookup == nil {
		lookup = hostIDLookup
	}
	id, err := lookup(group, name)
	if err != nil {
		return 0, fmt.Errorf("resolving %q: %w", name, err)
	}
	return id, nil
}

// minimalACL reports whether an access ACL says no more than the mode.
func minimalACL(xattr []byte) bool {
	es, err := parseACLXattr(xattr)
	return err == nil && len(es) <= 3
}
