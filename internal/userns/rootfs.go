package userns

// Rootfs is a container's root filesystem as ward re-mounted it for a
// user namespace. It is a plain value, kept in the front door's records,
// so that a later process (delete) can undo it.
type Rootfs struct {
	// Path is what the spec's root.path becomes.
	Path string `json:"path"`
	// Mounts are ward's mount points, in the order they were made.
	Mounts []string `json:"mounts"`
	// Dirs are directories ward created, removed after the mounts go.
	Dirs []string `json:"dirs"`
	// How says what was done, for the decision log.
	How string `json:"how"`
	// Upper is the overlay's upper layer ward gave to the block at
	// create when it could not idmap it ("" when none, or idmapped):
	// delete gives its entries back (UnchownTree).
	Upper string `json:"upper,omitempty"`
	// Layer is the overlay's upper layer when it is reached through an
	// idmapped mount, "" otherwise: what host root writes there through
	// ward's overlay (podman cp) is stored as the ID past the block,
	// which AdoptHostRootWrites gives to the container's root.
	Layer string `json:"layer,omitempty"`
}
