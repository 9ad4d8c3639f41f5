package runtime_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// joinDoor is what the joined-namespace test needs of a container manager.
type joinDoor struct {
	cli func(args ...string) (string, string, int)
	// run starts a detached container named name with extra flags.
	run []string
	// gvisor are the flags that send a container to gVisor.
	gvisor []string
}

// testJoinedNetns: a container ward sends to gVisor that joins another
// container's network namespace (--network container:X) runs there with
// runsc --network=host, so X keeps its address: X is reached on it by a
// third container over a veth before, while the gVisor container runs
// (from the gVisor container too) and after it is gone. runsc's default
// (--network=sandbox) moved X's address into the sandbox's own network
// stack and never gave it back (the address was gone during and after).
func testJoinedNetns(t *testing.T, d joinDoor) {
	const addrX, addrY = "203.0.113.10", "203.0.113.11"
	start := func(name, secs string, extra ...string) {
		t.Helper()
		args := append(slices.Clone(d.run), "--name", name)
		args = append(append(args, extra...), "ward.test/busybox:1", "/bin/busybox", "sleep", secs)
		if _, stderr, code := d.cli(args...); code != 0 {
			t.Fatalf("run %s: %s", name, stderr)
		}
		t.Cleanup(func() { d.cli("rm", "-f", name) })
	}
	pid := func(name string) string {
		t.Helper()
		out, stderr, code := d.cli("inspect", "-f", "{{.State.Pid}}", name)
		if code != 0 || strings.TrimSpace(out) == "0" {
			t.Fatalf("pid of %s: %s %s", name, out, stderr)
		}
		return strings.TrimSpace(out)
	}
	inNetns := func(p string, args ...string) (string, error) {
		out, err := exec.Command("nsenter", append([]string{"--net=/proc/" + p + "/ns/net"}, args...)...).CombinedOutput()
		return string(out), err
	}
	start("jx", "300", "--network", "none")
	start("jy", "300", "--network", "none")
	x, y := pid("jx"), pid("jy")
	// A veth between the two containers' namespaces, made from the host
	// without touching its own network.
	for _, c := range []struct {
		p    string
		args []string
	}{
		{x, []string{"ip", "link", "add", "wjx", "type", "veth", "peer", "name", "wjy", "netns", y}},
		{x, []string{"ip", "addr", "add", addrX + "/24", "dev", "wjx"}},
		{x, []string{"ip", "link", "set", "wjx", "up"}},
		{y, []string{"ip", "addr", "add", addrY + "/24", "dev", "wjy"}},
		{y, []string{"ip", "link", "set", "wjy", "up"}},
	} {
		if out, err := inNetns(c.p, c.args...); err != nil {
			t.Fatalf("%v: %v: %s", c.args, err, out)
		}
	}
	if _, stderr, code := d.cli("exec", "-d", "jx", "/bin/sh", "-c", "while true; do echo served-by-x | /bin/busybox nc -l -p 8080; done"); code != 0 {
		t.Fatalf("server in X: %s", stderr)
	}
	check := func(when string) {
		t.Helper()
		if out, _ := inNetns(x, "ip", "-o", "addr", "show", "dev", "wjx"); !strings.Contains(out, addrX+"/24") {
			t.Errorf("%s: X's interface lost its address: %q", when, out)
		}
		var out, stderr string
		for try := 0; try < 5; try++ {
			if out, stderr, _ = d.cli("exec", "jy", "/bin/busybox", "nc", "-w", "5", addrX, "8080"); strings.Contains(out, "served-by-x") {
				return
			}
			time.Sleep(time.Second)
		}
		t.Errorf("%s: X not reached at %s: %q %s", when, addrX, out, stderr)
	}
	check("before")

	// It ends by itself, to see X after the sandbox's exit and after its
	// removal (Podman deletes an exited container at `rm`, after it has
	// unmounted its root filesystem: runsc's delete then fails on its
	// filestore, which ward-runtime's delete must survive).
	start("jg", "20", append(slices.Clone(d.gvisor), "--network", "container:jx")...)
	if out, _, _ := d.cli("exec", "jg", "/bin/busybox", "dmesg"); !strings.Contains(out, gvisorBanner) {
		t.Fatalf("the joining container is not on gVisor: %q", out)
	}
	check("while the gVisor container runs")
	if out, stderr, _ := d.cli("exec", "jg", "/bin/busybox", "nc", "-w", "5", addrX, "8080"); !strings.Contains(out, "served-by-x") {
		t.Errorf("the gVisor container does not reach X at %s: %q %s", addrX, out, stderr)
	}
	if out, stderr, code := d.cli("wait", "jg"); code != 0 {
		t.Fatalf("wait: %s %s", out, stderr)
	}
	check("after the gVisor container exited")
	if _, stderr, code := d.cli("rm", "jg"); code != 0 {
		t.Fatalf("rm: %s", stderr)
	}
	check("after the gVisor container is gone")
	t.Logf("X kept %s and was reached before, during and after", addrX)
}
