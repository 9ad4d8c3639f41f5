//go:build !linux

package incident

import "github.com/ward-runtime/ward/internal/nodeonly"

// renameNoReplace fails: incident bundles are collected on a Linux node
// (reading and exporting one works anywhere).
func renameNoReplace(string, string) error { return nodeonly.New("writing an incident bundle") }
