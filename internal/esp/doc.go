// Package esp writes FAT32 images for EFI system partitions: the El
// Torito image of a boot medium, and the RAM disk a UEFI HTTP boot
// downloads and boots from. It is a package of its own because media and
// netboot both write one, and netboot cannot import media, which imports
// netboot.
//
// The images are go-diskfs's, finished so that their bytes depend on the
// files and the time given only, and so that fsck.vfat, which Check runs,
// finds nothing to say.
package esp
