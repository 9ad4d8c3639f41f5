package k8s

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ward-runtime/ward/integration/harness"
)

// testAdmission applies ward's exported ValidatingAdmissionPolicy to the
// cluster: kubectl apply of what ward rejects is refused with ward's
// finding, an ordinary manifest is admitted.
func testAdmission(t *testing.T, c *Cluster, ns string) {
	out, err := exec.Command(harness.WardBin(t, "ward"), "policy", "export", "--format", "validatingadmissionpolicy").Output()
	if err != nil {
		t.Fatalf("ward policy export: %v", err)
	}
	c.Apply(t, string(out))
	bad := js(deployment("admission-privileged", ns, podSpec("ward", "sleep 100000", map[string]any{"privileged": true})))
	// The API server compiles the policy a moment after it is created.
	var msg string
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := c.KubectlIn(bad, "apply", "-f", "-")
		if err != nil && strings.Contains(err.Error(), "denied") {
			msg = err.Error()
			break
		}
		if err == nil {
			c.TryKubectl("-n", ns, "delete", "deployment", "admission-privileged", "--wait=false")
		}
		if time.Now().After(deadline) {
			t.Fatalf("kubectl apply of a privileged Deployment was never refused: %v", err)
		}
		time.Sleep(time.Second)
	}
	t.Logf("kubectl apply of a privileged Deployment: %s", msg)
	if !strings.Contains(msg, "privileged") {
		t.Errorf("the refusal does not name ward's finding: %s", msg)
	}
	ok := js(deployment("admission-ordinary", ns, podSpec("ward", "sleep 100000", nil)))
	if out, err := c.KubectlIn(ok, "apply", "-f", "-"); err != nil {
		t.Errorf("an ordinary Deployment was refused: %v\n%s", err, out)
	}
	if out, err := c.KubectlIn(ok, "apply", "--dry-run=server", "-f", "-"); err != nil || strings.Contains(out, "Warning") {
		t.Errorf("ordinary Deployment, server dry run: %v %s", err, out)
	}
}
