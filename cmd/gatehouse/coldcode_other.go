//go:build !linux

package main

// releaseColdCode does nothing outside Linux.
func releaseColdCode() int64 { return 0 }
