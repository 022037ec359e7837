//go:build !linux

package main

import "errors"

// releaseStartupPages is Linux only (see startpages_linux.go).
func releaseStartupPages() (int64, bool, error) { return 0, false, errUnsupported }

var errUnsupported = errors.New("only on Linux")
