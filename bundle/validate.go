package bundle

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ward-runtime/ward/internal/capability"
)

// Validate checks what decoding cannot: fields that must be present, names
// that must be known, and strings that a runtime would read differently than
// ward (NUL bytes, ".." components). It runs on every spec ward judges, so it
// allocates only to report an error.
func Validate(s *specs.Spec) error {
	if !strings.HasPrefix(s.Version, "1.") {
		return fieldErr("ociVersion", fmt.Errorf("unsupported version %q (ward reads runtime-spec 1.x)", s.Version))
	}
	if s.Root == nil || s.Root.Path == "" {
		return fieldErr("root.path", errors.New("missing"))
	}
	if err := checkPath(s.Root.Path); err != nil {
		return fieldErr("root.path", err)
	}
	if s.Process == nil {
		return fieldErr("process", errors.New("missing"))
	}
	if err := ValidateProcess(s.Process); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Path = "process." + e.Path
		}
		return err
	}
	if strings.IndexByte(s.Hostname, 0) >= 0 {
		return fieldErr("hostname", errNUL)
	}
	for i := range s.Mounts {
		if err := validateMount(i, &s.Mounts[i]); err != nil {
			return err
		}
	}
	for k, v := range s.Annotations {
		if strings.IndexByte(k, 0) >= 0 || strings.IndexByte(v, 0) >= 0 {
			return fieldErr(fieldPath([]string{"annotations", k}), errNUL)
		}
	}
	if s.Linux != nil {
		if err := validateLinux(s.Linux); err != nil {
			return err
		}
	}
	return nil
}

// ValidateProcess checks a process on its own, as `runc exec --process`
// supplies one. Paths in returned errors are relative to the process.
func ValidateProcess(p *specs.Process) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return fieldErr("args", errors.New("missing: the process has nothing to run"))
	}
	if i := indexNUL(p.Args); i >= 0 {
		return fieldErr(indexed("args", i), errNUL)
	}
	if i := indexNUL(p.Env); i >= 0 {
		return fieldErr(indexed("env", i), errNUL)
	}
	if !strings.HasPrefix(p.Cwd, "/") {
		return fieldErr("cwd", fmt.Errorf("%q is not an absolute path", p.Cwd))
	}
	if err := checkPath(p.Cwd); err != nil {
		return fieldErr("cwd", err)
	}
	if strings.IndexByte(p.ApparmorProfile, 0) >= 0 {
		return fieldErr("apparmorProfile", errNUL)
	}
	if c := p.Capabilities; c != nil {
		sets := [...]struct {
			name string
			caps []string
		}{
			{"bounding", c.Bounding},
			{"effective", c.Effective},
			{"permitted", c.Permitted},
			{"inheritable", c.Inheritable},
			{"ambient", c.Ambient},
		}
		for _, set := range sets {
			for i, name := range set.caps {
				if !capability.Known(name) {
					return fieldErr(indexed("capabilities."+set.name, i),
						fmt.Errorf("unknown capability %q", name))
				}
			}
		}
	}
	return nil
}

func validateMount(i int, m *specs.Mount) error {
	at := func(field string) string { return indexed("mounts", i) + "." + field }
	if m.Destination == "" {
		return fieldErr(at("destination"), errors.New("missing"))
	}
	if err := checkPath(m.Destination); err != nil {
		return fieldErr(at("destination"), err)
	}
	if err := checkPath(m.Source); err != nil {
		return fieldErr(at("source"), err)
	}
	if strings.IndexByte(m.Type, 0) >= 0 {
		return fieldErr(at("type"), errNUL)
	}
	if j := indexNUL(m.Options); j >= 0 {
		return fieldErr(indexed(at("options"), j), errNUL)
	}
	return nil
}

func validateLinux(l *specs.Linux) error {
	seen := make(map[specs.LinuxNamespaceType]bool, len(l.Namespaces))
	for i, ns := range l.Namespaces {
		switch ns.Type {
		case specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace,
			specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace:
		default:
			return fieldErr(indexed("linux.namespaces", i)+".type", fmt.Errorf("unknown namespace type %q", ns.Type))
		}
		if seen[ns.Type] {
			return fieldErr(indexed("linux.namespaces", i)+".type", fmt.Errorf("namespace %q listed twice", ns.Type))
		}
		seen[ns.Type] = true
		if err := checkPath(ns.Path); err != nil {
			return fieldErr(indexed("linux.namespaces", i)+".path", err)
		}
	}
	for i, p := range l.MaskedPaths {
		if err := checkPath(p); err != nil {
			return fieldErr(indexed("linux.maskedPaths", i), err)
		}
	}
	for i, p := range l.ReadonlyPaths {
		if err := checkPath(p); err != nil {
			return fieldErr(indexed("linux.readonlyPaths", i), err)
		}
	}
	for i, d := range l.Devices {
		if err := checkPath(d.Path); err != nil {
			return fieldErr(indexed("linux.devices", i)+".path", err)
		}
	}
	for k, v := range l.Sysctl {
		if strings.IndexByte(k, 0) >= 0 || strings.IndexByte(v, 0) >= 0 {
			return fieldErr(fieldPath([]string{"linux", "sysctl", k}), errNUL)
		}
	}
	return nil
}

var errNUL = errors.New("contains a NUL byte")

// indexNUL returns the index of the first string holding a NUL byte, or -1.
func indexNUL(list []string) int {
	for i, s := range list {
		if strings.IndexByte(s, 0) >= 0 {
			return i
		}
	}
	return -1
}

// checkPath refuses NUL bytes and ".." components. The kernel would stop
// reading a path at the NUL, and ".." lets a path name one place to a lexical
// check and another to the runtime; no real tool writes either.
func checkPath(p string) error {
	if strings.IndexByte(p, 0) >= 0 {
		return errNUL
	}
	if hasDotDot(p) {
		return fmt.Errorf("%q has a \"..\" component", p)
	}
	return nil
}

func hasDotDot(p string) bool {
	for len(p) > 0 {
		var elem string
		elem, p, _ = strings.Cut(p, "/")
		if elem == ".." {
			return true
		}
	}
	return false
}

func fieldErr(path string, err error) error {
	return &Error{Path: path, Err: err}
}

func indexed(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
