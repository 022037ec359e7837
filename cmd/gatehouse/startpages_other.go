//go:build !linux

package main

import "errors"

// releaseStartupPages is Linux only (see startpages_linux.go).
func releaseStartupPages() (int64, error) { return 0, errUnsupported }

var errUnsupported = errors.New("only on Linux")
