package bundle

import specs "github.com/opencontainers/runtime-spec/specs-go"

// Kind says how a container relates to a pod.
type Kind string

const (
	// Standalone is a container with no pod: docker, podman, ctr.
	Standalone Kind = "standalone"
	// Sandbox is a pod's sandbox (pause) container. Pod-level settings such
	// as hostPID or sysctls are visible only in its spec.
	Sandbox Kind = "sandbox"
	// PodContainer is an application container that joins its sandbox's
	// namespaces by path.
	PodContainer Kind = "container"
)

// Annotation keys written by containerd's CRI plugin and by CRI-O.
const (
	AnnotationContainerType    = "io.kubernetes.cri.container-type"
	AnnotationSandboxID        = "io.kubernetes.cri.sandbox-id"
	AnnotationSandboxName      = "io.kubernetes.cri.sandbox-name"
	AnnotationSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	AnnotationContainerName    = "io.kubernetes.cri.container-name"
	AnnotationImageName        = "io.kubernetes.cri.image-name"
	AnnotationSandboxUID       = "io.kubernetes.cri.sandbox-uid"

	crioContainerType = "io.kubernetes.cri-o.ContainerType"
	crioSandboxID     = "io.kubernetes.cri-o.SandboxID"
	crioImageName     = "io.kubernetes.cri-o.ImageName"
	podNamespace      = "io.kubernetes.pod.namespace"
	podName           = "io.kubernetes.pod.name"
	podUID            = "io.kubernetes.pod.uid"
	containerName     = "io.kubernetes.container.name"
)

// Workload is what a spec's annotations say about who runs it. All fields
// are empty for a standalone container, whose manager writes none of them.
type Workload struct {
	Kind      Kind   `json:"kind"`
	SandboxID string `json:"sandboxID,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
	PodUID    string `json:"podUID,omitempty"`
	Container string `json:"container,omitempty"`
	Image     string `json:"image,omitempty"`
}

// WorkloadOf reads the workload metadata from s's annotations.
func WorkloadOf(s *specs.Spec) Workload {
	a := s.Annotations
	w := Workload{Kind: Standalone}
	switch first(a, AnnotationContainerType, crioContainerType) {
	case "sandbox":
		w.Kind = Sandbox
	case "container":
		w.Kind = PodContainer
	}
	w.SandboxID = first(a, AnnotationSandboxID, crioSandboxID)
	w.Namespace = first(a, AnnotationSandboxNamespace, podNamespace)
	w.Pod = first(a, AnnotationSandboxName, podName)
	w.PodUID = first(a, AnnotationSandboxUID, podUID)
	w.Container = first(a, AnnotationContainerName, containerName)
	w.Image = first(a, AnnotationImageName, crioImageName)
	return w
}

func first(a map[string]string, keys ...string) string {
	for _, k := range keys {
		if v, ok := a[k]; ok {
			return v
		}
	}
	return ""
}
