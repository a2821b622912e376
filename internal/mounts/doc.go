// Package mounts reads the kernel's mount table so krgimage can prove that
// nothing is left mounted inside an image before it deletes or archives it.
package mounts
