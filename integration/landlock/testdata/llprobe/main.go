// Command llprobe is a static helper the Landlock integration tests copy
// into container images: each subcommand tries one operation and prints
// "ok" or the errno name, so that tests can tell a Landlock refusal
// (EACCES, EPERM) from anything else (ECONNREFUSED).
package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: llprobe tcp-connect ADDR:PORT | tcp-bind PORT | abstract-connect NAME | abstract-self NAME | syscall NR")
		os.Exit(2)
	}
	err := run(os.Args[1], os.Args[2])
	if err == nil {
		fmt.Printf("%s %s: ok\n", os.Args[1], os.Args[2])
		return
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		fmt.Printf("%s %s: %s\n", os.Args[1], os.Args[2], unix.ErrnoName(errno))
	} else {
		fmt.Printf("%s %s: %v\n", os.Args[1], os.Args[2], err)
	}
	os.Exit(1)
}

func run(op, arg string) error {
	switch op {
	case "tcp-connect":
		ap, err := netip.ParseAddrPort(arg)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Connect(fd, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())})
	case "tcp-bind":
		port, err := strconv.Atoi(arg)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port})
	case "abstract-connect":
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Connect(fd, &unix.SockaddrUnix{Name: "@" + arg})
	case "bench-launcher":
		// Alternates /bin/true with and without the launcher in front,
		// from inside a container, and prints the medians.
		n, err := strconv.Atoi(arg)
		if err != nil {
			return err
		}
		var with, without, diff []time.Duration
		timeRun := func(args ...string) (time.Duration, error) {
			start := time.Now()
			err := exec.Command(args[0], args[1:]...).Run()
			return time.Since(start), err
		}
		for i := 0; i < n; i++ {
			a, err := timeRun("/.ward/ward-init", "/bin/true")
			if err != nil {
				return err
			}
			b, err := timeRun("/bin/true")
			if err != nil {
				return err
			}
			with, without, diff = append(with, a), append(without, b), append(diff, a-b)
		}
		med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
		fmt.Printf("bench-launcher %d: with %v without %v difference %v\n", n, med(with), med(without), med(diff))
		return nil
	case "syscall":
		// A raw system call with zero arguments, by number: what the
		// seccomp filter answers before the kernel looks at them.
		n, err := strconv.Atoi(arg)
		if err != nil {
			return err
		}
		if _, _, e := unix.RawSyscall(uintptr(n), 0, 0, 0); e != 0 {
			return e
		}
		return nil
	case "abstract-self":
		// Listens, then connects to itself: the server is in the
		// client's own Landlock domain, which scoping allows.
		srv, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(srv)
		if err := unix.Bind(srv, &unix.SockaddrUnix{Name: "@" + arg}); err != nil {
			return err
		}
		if err := unix.Listen(srv, 1); err != nil {
			return err
		}
		return run("abstract-connect", arg)
	}
	return fmt.Errorf("unknown operation %q", op)
}
