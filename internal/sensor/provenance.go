package sensor

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Provenance flags of a written file, as the program records them
// (bpf/sensor.bpf.c's enum writer_flags).
const (
	// WriterImage: the (last) writer's executable is a lower-layer file
	// of the container's root overlay, a file of the image that nothing
	// in the container has changed.
	WriterImage uint32 = 1
	// WriterToolchain: every process that opened the file for writing
	// ran a Toolchain executable of the image.
	WriterToolchain uint32 = 2
)

// Toolchain is the small, fixed set of build and packaging tools whose
// output a build job runs: linkers (GNU ld and gold, LLVM's lld, mold,
// Go's link and go, which moves what link wrote), binutils that rewrite
// a linked binary (strip, objcopy), cargo (which copies what the linker
// wrote) and the package managers that unpack binaries (dpkg, which apt
// drives; rpm; apk). A name also matches after a target triplet
// (x86_64-linux-gnu-ld.bfd is ld.bfd). The program fills its toolchain
// map with it at load; Digest covers it, so a changed list is a new
// program. A file counts as a build artefact only when every writer ran
// one of these from the image's lower layer (docs/sensors.md says why,
// docs/threat-model.md what it gives away). Copying tools (cp, install,
// tar) are left out on purpose: they carry any file's content, and a
// copy of a dropped binary is a dropped binary.
func Toolchain() []string {
	return []string{
		"ld", "ld.bfd", "ld.gold", "ld.lld", "lld", "mold",
		"link", "go", "cargo",
		"strip", "objcopy",
		"dpkg", "rpm", "apk",
	}
}

// maxToolName bounds a Toolchain name: the program matches a name after a
// target triplet only up to this length (sensor.bpf.c's TOOL_LEN).
const maxToolName = 15

// fillToolchain writes Toolchain into the program's toolchain map.
func fillToolchain(m *ebpf.Map) error {
	for _, name := range Toolchain() {
		var k sensorToolName
		if len(name) == 0 || len(name) > maxToolName {
			return fmt.Errorf("toolchain name %q: want 1 to %d bytes", name, maxToolName)
		}
		for i := 0; i < len(name); i++ {
			k.Name[i] = int8(name[i])
		}
		if err := m.Update(&k, uint8(1), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("filling the sensor's toolchain map with %q: %w", name, err)
		}
	}
	return nil
}
