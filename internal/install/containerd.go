package install

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ContainerdVersion is the host containerd's version as far as it is
// known: Major 0 when unknown.
type ContainerdVersion struct {
	Major, Minor int
	// From says how it was learnt, for messages.
	From string
}

func (v ContainerdVersion) String() string {
	if v.Major == 0 {
		return "unknown"
	}
	if v.Minor < 0 {
		return fmt.Sprintf("%d.x", v.Major)
	}
	return fmt.Sprintf("%d.%d", v.Major, v.Minor)
}

// ParseContainerdVersion reads "2.4.2", "v2.4", "1.7.27-1" or "2.x".
func ParseContainerdVersion(s string) (ContainerdVersion, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	major, rest, _ := strings.Cut(s, ".")
	v := ContainerdVersion{Minor: -1}
	var err error
	if v.Major, err = strconv.Atoi(major); err != nil || v.Major < 1 {
		return ContainerdVersion{}, fmt.Errorf("containerd version %q: want MAJOR.MINOR, e.g. 2.4", s)
	}
	minor, _, _ := strings.Cut(rest, ".")
	if m, err := strconv.Atoi(strings.SplitN(minor, "-", 2)[0]); err == nil {
		v.Minor = m
	}
	return v, nil
}

// containerdVersion learns the host containerd's version without running
// it (a DaemonSet pod should not execute the host's binaries, and an
// arm64 node's binary may be checked from elsewhere): the Go build
// information every containerd binary carries names its module, which is
// github.com/containerd/containerd/v2 from 2.0 on, and usually the version.
// A distribution's build may lack the version; the module path still tells
// 1.x from 2.x.
func (n Node) containerdVersion() ContainerdVersion {
	if n.ContainerdVersion != "" {
		v, err := ParseContainerdVersion(n.ContainerdVersion)
		if err == nil {
			v.From = "--containerd-version"
			return v
		}
	}
	bin := n.search("containerd")
	if bin == "" {
		return ContainerdVersion{}
	}
	bi, err := buildinfo.ReadFile(filepath.Join(n.Root, bin))
	if err != nil {
		return ContainerdVersion{}
	}
	v := ContainerdVersion{Minor: -1, From: bin}
	switch {
	case bi.Main.Path == "github.com/containerd/containerd/v2" || strings.HasPrefix(bi.Path, "github.com/containerd/containerd/v2/"):
		v.Major = 2
	case bi.Main.Path == "github.com/containerd/containerd" || strings.HasPrefix(bi.Path, "github.com/containerd/containerd/"):
		v.Major = 1
	default:
		// Built into another program (k3s, RKE2): not told by its module.
		return ContainerdVersion{}
	}
	if p, err := ParseContainerdVersion(bi.Main.Version); err == nil && p.Major == v.Major {
		v.Minor = p.Minor
	}
	return v
}

// checkConfigVersions refuses an install containerd could not read. ward's
// drop-in is containerd 2.x's config version 3: containerd 2.x migrates an
// older root file (version 2, or none) at each start and merges the drop-in
// into it, but containerd 1.x refuses a version 3 file and would not start
// at all. rootVersion is the root file's `version` (1 when absent).
func checkConfigVersions(path string, rootVersion int64, cv ContainerdVersion) error {
	switch {
	case cv.Major == 1:
		return fmt.Errorf("containerd %s (%s) is 1.x: ward's drop-in is containerd 2.x's config version 3, which containerd 1.x refuses, and it would not start; upgrade containerd to 2.x first",
			cv, cv.From)
	case cv.Major == 0 && rootVersion < 3:
		return fmt.Errorf("%s is config version %d (containerd 1.x's layout) and containerd's own version is unknown: "+
			"a containerd 1.x would refuse ward's version 3 drop-in and not start. If containerd is 2.x, say so with --containerd-version 2.x "+
			"(or migrate the file: `containerd config migrate`)", path, rootVersion)
	}
	return nil
}

// Layout is where a distribution keeps containerd's configuration. k3s and
// RKE2 run their own containerd and regenerate its config.toml from a
// template at every start; k0s writes its own root file that imports a
// drop-in directory.
type Layout struct {
	Name string
	// Config is the root file containerd reads; ward only reads it.
	Config string
	// DropInDir is where ward's drop-in goes; the root file must import it.
	DropInDir string
	// Units are the systemd units whose restart restarts containerd.
	Units []string
	// HowToImport says how to make the root file import DropInDir.
	HowToImport string
}

// DropIn is ward's drop-in in this layout.
func (l Layout) DropIn() string { return filepath.Join(l.DropInDir, "ward.toml") }

// importPattern is the imports entry that covers DropInDir.
func (l Layout) importPattern() string { return filepath.Join(l.DropInDir, "*.toml") }

// Layouts lists the known layouts, containerd's own last (the fallback).
func Layouts() []Layout {
	const k3s, rke2 = "/var/lib/rancher/k3s/agent/etc/containerd", "/var/lib/rancher/rke2/agent/etc/containerd"
	template := func(dir, unit string) string {
		return fmt.Sprintf("%s regenerates config.toml at every start: releases whose generated file imports config-v3.toml.d/*.toml need nothing more; "+
			"on older ones, create %s/config-v3.toml.tmpl holding `{{ template \"base\" . }}` followed by an imports line naming %s/config-v3.toml.d/*.toml, then restart %s", unit, dir, dir, unit)
	}
	return []Layout{
		{Name: "k3s", Config: k3s + "/config.toml", DropInDir: k3s + "/config-v3.toml.d", Units: []string{"k3s", "k3s-agent"}, HowToImport: template(k3s, "k3s")},
		{Name: "rke2", Config: rke2 + "/config.toml", DropInDir: rke2 + "/config-v3.toml.d", Units: []string{"rke2-server", "rke2-agent"}, HowToImport: template(rke2, "rke2")},
		{Name: "k0s", Config: "/etc/k0s/containerd.toml", DropInDir: "/etc/k0s/containerd.d", Units: []string{"k0sworker", "k0scontroller"},
			HowToImport: "k0s writes /etc/k0s/containerd.toml with an imports line for /etc/k0s/containerd.d/*.toml; if yours has none, let k0s regenerate it (remove it and restart k0s)"},
		{Name: "containerd", Config: ContainerdConf, DropInDir: DropInDir, Units: []string{"containerd"}},
	}
}

// layout is the node's: ContainerdConfig names containerd's own root file
// outright; otherwise the first layout whose root file exists, else
// containerd's.
func (n Node) layout() Layout {
	all := Layouts()
	def := all[len(all)-1]
	if n.ContainerdConfig != "" {
		def.Config = n.ContainerdConfig
		return def
	}
	for _, l := range all[:len(all)-1] {
		if _, err := os.Stat(filepath.Join(n.Root, l.Config)); err == nil {
			return l
		}
	}
	return def
}
