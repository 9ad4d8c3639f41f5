//go:build !linux

package sensor

import "github.com/ward-runtime/ward/internal/nodeonly"

// ListPinned fails: sensors are pinned in a Linux node's bpffs.
func ListPinned() ([]Pinned, error) { return nil, nodeonly.New("listing ward's pinned eBPF sensors") }

// RemovePinned fails: sensors are pinned in a Linux node's bpffs.
func RemovePinned() ([]string, error) { return nil, nodeonly.New("unpinning ward's eBPF sensors") }
