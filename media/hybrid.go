package media

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
)

// Hybrid MBR geometry, isohybrid's defaults: 64 heads and 32 sectors a
// track make 1 MiB cylinders, and the image is padded to whole cylinders.
const (
	mbrCodeSize = 432
	heads       = 64
	sectors     = 32
	cylinder    = heads * sectors * 512
	// isolinux.bin carries this at offset 0x40 when it has the entry point
	// the hybrid MBR jumps to.
	hybridSignature = "\xfb\xc0\x78\x70"
	// Partition types: the ISO as isohybrid marks it, and the EFI system
	// partition.
	typeISO   = 0x17
	typeEmpty = 0x00
	typeESP   = 0xef
)

// bootImage is one El Torito catalog entry: where its image starts, in
// 2048-byte sectors, and how many 512-byte sectors it says to load.
type bootImage struct {
	lba   uint32
	count uint16
}

// bootCatalog reads the El Torito entries of an image: the default
// entry, and the first entry of the next section (the EFI one).
func bootCatalog(f *os.File) ([]bootImage, error) {
	var catalog uint32
	for sec := int64(vdStart); sec < vdStart+64; sec++ {
		vd := make([]byte, sectorSize)
		if _, err := f.ReadAt(vd, sec*sectorSize); err != nil {
			return nil, fmt.Errorf("%w: volume descriptor %d: %v", ErrCorrupt, sec, err)
		}
		if vd[0] == vdTerminator {
			break
		}
		if vd[0] == vdBoot && string(vd[7:30]) == "EL TORITO SPECIFICATION" {
			catalog = binary.LittleEndian.Uint32(vd[71:75])
			break
		}
	}
	if catalog == 0 {
		return nil, fmt.Errorf("%w: no El Torito boot record", ErrCorrupt)
	}
	cat := make([]byte, sectorSize)
	if _, err := f.ReadAt(cat, int64(catalog)*sectorSize); err != nil {
		return nil, err
	}
	if cat[0] != 1 || cat[30] != 0x55 || cat[31] != 0xaa {
		return nil, fmt.Errorf("%w: El Torito validation entry", ErrCorrupt)
	}
	var out []bootImage
	entry := func(e []byte) bootImage {
		return bootImage{lba: binary.LittleEndian.Uint32(e[8:12]), count: binary.LittleEndian.Uint16(e[6:8])}
	}
	out = append(out, entry(cat[32:64]))
	if h := cat[64]; h == 0x90 || h == 0x91 {
		out = append(out, entry(cat[96:128]))
	}
	return out, nil
}

// writeHybridMBR does what isohybrid does to an isolinux image: the MBR
// boot code, the LBA of isolinux.bin for it to load, a disk signature and
// one active partition over the whole image, padded to whole cylinders.
// With an EFI entry, as isohybrid --uefi does, the ISO's partition has
// type 0 (UEFI firmware would reject a table whose partitions overlap)
// and a second partition of type 0xEF covers the EFI system partition
// image, which is what UEFI firmware boots from a disk.
func writeHybridMBR(f *os.File, code []byte, efi bool) error {
	if len(code) != mbrCodeSize {
		return fmt.Errorf("%w: hybrid MBR code is %d bytes, want %d (isohdpfx.bin)", ErrNotHybrid, len(code), mbrCodeSize)
	}
	entries, err := bootCatalog(f)
	if err != nil {
		return err
	}
	sig := make([]byte, 4)
	if _, err := f.ReadAt(sig, int64(entries[0].lba)*sectorSize+0x40); err != nil {
		return err
	}
	if string(sig) != hybridSignature {
		return fmt.Errorf("%w: no hybrid entry point in the boot image", ErrNotHybrid)
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	cyls := (fi.Size() + cylinder - 1) / cylinder
	if err := f.Truncate(cyls * cylinder); err != nil {
		return err
	}
	mbr := make([]byte, 512)
	copy(mbr, code)
	binary.LittleEndian.PutUint32(mbr[432:], entries[0].lba*4)
	// isohybrid takes a random disk signature; a hash of the volume
	// descriptors is as good at telling images apart and is reproducible.
	vds := make([]byte, 4*sectorSize)
	if _, err := f.ReadAt(vds, vdStart*sectorSize); err != nil {
		return err
	}
	h := sha256.Sum256(vds)
	copy(mbr[440:444], h[:4])
	ptype := byte(typeISO)
	if efi {
		ptype = typeEmpty
	}
	part(mbr[446:462], 0x80, ptype, 0, uint32(cyls*cylinder/512), chs(0), chs(uint32(cyls*cylinder/512)-1))
	if efi {
		if len(entries) < 2 {
			return fmt.Errorf("%w: no EFI entry in the boot catalog", ErrCorrupt)
		}
		e := entries[1]
		count := uint32(e.count)
		if count == 0 {
			// Large images say 0 in the catalog: their FAT knows its size.
			if count, err = fatSectors(f, int64(e.lba)*sectorSize); err != nil {
				return err
			}
		}
		// Beyond what CHS can say: isohybrid writes the maximum.
		far := [3]byte{0xfe, 0xff, 0xff}
		part(mbr[462:478], 0, typeESP, e.lba*4, count, far, far)
	}
	mbr[510], mbr[511] = 0x55, 0xaa
	_, err = f.WriteAt(mbr, 0)
	return err
}

// part writes one MBR partition entry.
func part(b []byte, status, ptype byte, start, count uint32, first, last [3]byte) {
	b[0] = status
	copy(b[1:4], first[:])
	b[4] = ptype
	copy(b[5:8], last[:])
	binary.LittleEndian.PutUint32(b[8:12], start)
	binary.LittleEndian.PutUint32(b[12:16], count)
}

// chs is a sector's cylinder/head/sector address in MBR form, cylinders
// past 1023 clamped as isohybrid does.
func chs(lba uint32) [3]byte {
	c := lba / (heads * sectors)
	h := lba / sectors % heads
	s := lba%sectors + 1
	if c > 1023 {
		c, h, s = 1023, heads-1, sectors
	}
	return [3]byte{byte(h), byte(s) | byte(c>>8&3)<<6, byte(c)}
}

// fatSectors is the size in 512-byte sectors of the FAT filesystem at off.
func fatSectors(f *os.File, off int64) (uint32, error) {
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, off); err != nil {
		return 0, err
	}
	if bs[510] != 0x55 || bs[511] != 0xaa || !bytes.Equal(bs[82:87], []byte("FAT32")) {
		return 0, fmt.Errorf("%w: the EFI boot image is not FAT32", ErrCorrupt)
	}
	perSector := uint32(binary.LittleEndian.Uint16(bs[11:13]))
	total := binary.LittleEndian.Uint32(bs[32:36])
	return total * perSector / 512, nil
}
