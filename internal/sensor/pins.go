package sensor

// PinRoot is where ward pins its node-wide sensors in bpffs: one
// directory per state directory (an instance, named by the state
// directory's digest), in it one directory per program (named by the
// program's digest).
const PinRoot = "/sys/fs/bpf/ward"

// Pinned is one program set pinned under PinRoot.
type Pinned struct {
	// Dir is its pin directory; StateDir whose it is ("" when unknown).
	Dir, StateDir string
	// Digest is its program's; Current says it is this build's.
	Digest  string
	Current bool
	// Orphan: its state directory is gone, nobody can use it.
	Orphan bool
}
