package userns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// IdmapRootfs makes rootfs reachable at dir/rootfs through idmapped
// mounts for the block r (ns maps it):
//
//   - an overlay mounted at rootfs (Docker, Podman, containerd) cannot be
//     idmapped itself, so a second overlay is mounted with the same
//     layers, each lower layer through an idmapped bind, and the upper
//     layer through an idmapped bind of its directory (idmappedUpper), so
//     that it stores the IDs the container sees, as runc's does; a kernel
//     that refuses that gets the upper layer as it is, its few entries
//     given to the mapped IDs, and given back at delete (Rootfs.Upper);
//   - any other directory (a plain rootfs on ext4, xfs, btrfs, tmpfs) is
//     bind-mounted through an idmapped mount.
//
// A filesystem that refuses idmapping yields an error wrapping
// ErrNotIdmappable, after undoing what was done.
func IdmapRootfs(rootfs, dir string, ns *Namespace, r Range) (*Rootfs, error) {
	rf := &Rootfs{Path: filepath.Join(dir, "rootfs")}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("idmapping the root filesystem: %w", err)
	}
	rf.Dirs = append(rf.Dirs, dir)
	if err := os.Mkdir(rf.Path, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("idmapping the root filesystem: %w", err)
	}
	rf.Dirs = append(rf.Dirs, rf.Path)
	// Only an overlay mounted right at rootfs needs its layers rebuilt;
	// anything else is one idmapped bind. statfs says which without reading
	// mountinfo, which grows with every mount on a busy node.
	var sfs unix.Statfs_t
	if err := unix.Statfs(rootfs, &sfs); err != nil {
		return nil, fmt.Errorf("idmapping the root filesystem: %w", err)
	}
	var (
		mi      MountInfo
		isMount bool
		err     error
	)
	if sfs.Type == unix.OVERLAYFS_SUPER_MAGIC {
		if mi, isMount, err = MountAt(rootfs); err != nil {
			return nil, err
		}
	}
	if isMount && mi.FSType == "overlay" {
		err = rf.overlay(mi, dir, ns, r)
	} else {
		err = ns.IdmapBind(rootfs, rf.Path)
		if err == nil {
			rf.Mounts = append(rf.Mounts, rf.Path)
			rf.How = "idmapped bind of " + rootfs
		}
	}
	if err != nil {
		rf.Release()
		return nil, err
	}
	return rf, nil
}

func (rf *Rootfs) overlay(mi MountInfo, dir string, ns *Namespace, r Range) error {
	ov, err := ParseOverlay(mi.Super)
	if err != nil {
		return err
	}
	lowers := make([]string, len(ov.Lower))
	var upperNote string
	for i, l := range ov.Lower {
		if !filepath.IsAbs(l) {
			// Docker's overlay2 names layers relative to its overlay2
			// directory (l/<short id>), the parent of each layer's own.
			if ov.Upper == "" {
				return fmt.Errorf("overlay lower layer %q is relative", l)
			}
			l = filepath.Join(filepath.Dir(filepath.Dir(ov.Upper)), l)
		}
		dst := filepath.Join(dir, "l"+strconv.Itoa(i))
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("idmapping overlay layer: %w", err)
		}
		rf.Dirs = append(rf.Dirs, dst)
		if err := ns.IdmapBind(l, dst); err != nil {
			return err
		}
		rf.Mounts = append(rf.Mounts, dst)
		lowers[i] = dst
	}
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if ov.Upper == "" {
		return rf.mountOverlay(opts, mi, len(lowers), "")
	}
	work := filepath.Join(filepath.Dir(ov.Work), "ward-work")
	if err := os.RemoveAll(work); err != nil {
		return fmt.Errorf("preparing overlay workdir: %w", err)
	}
	if err := os.Mkdir(work, 0o700); err != nil {
		return fmt.Errorf("preparing overlay workdir: %w", err)
	}
	rf.Dirs = append(rf.Dirs, work)
	if filepath.Dir(ov.Upper) == filepath.Dir(ov.Work) {
		note, err := rf.idmappedUpper(opts, ov, mi, dir, ns, r)
		if err == nil {
			return nil
		}
		// A kernel that refuses an idmapped upper layer: the upper
		// layer as it is, below.
		upperNote = "; upper layer not idmapped (" + err.Error() + ")" + note
	}
	// The upper layer is the container's own, made by its manager moments
	// ago: empty but for the mount points the manager made (Podman's
	// /etc/hostname...), as host root. Those few entries, the layer's top
	// directory among them, go to the mapped IDs; the image's layers are
	// never changed. What the container writes is stored with host IDs
	// until delete gives them back (Rootfs.Upper).
	n, err := ChownTree(ov.Upper, r)
	if err != nil {
		return err
	}
	upperNote += fmt.Sprintf("; %d entries of the upper layer given to the mapped IDs", n)
	rf.Upper = ov.Upper
	return rf.mountOverlay(opts+",upperdir="+ov.Upper+",workdir="+work, mi, len(lowers), upperNote)
}

// idmappedUpper mounts the overlay with its upper layer too reached
// through an idmapped mount of the layer's directory (upper and ward's
// workdir, which overlayfs wants on one mount), so that what the
// container writes is stored with the IDs it sees, as under runc: a
// commit or diff of the running container reads the layer as runc's, and
// a file the manager writes there as host root (docker cp) is the
// container root's. Overlayfs works on the upper layer with the mounter's
// credentials, which must map through the idmapped mount: the mount is
// made with the block's root as filesystem IDs (mountAsBlock). Mounted in
// the host's user namespace, the overlay keeps trusted.overlay.* xattrs,
// the ones Docker and Podman read and write in the layer. Entries an
// earlier ward left with host IDs (its upper layers stored them while
// running) are given back first. On error nothing of it is left mounted.
func (rf *Rootfs) idmappedUpper(lowerOpts string, ov Overlay, mi MountInfo, dir string, _ *Namespace, r Range) (string, error) {
	n, err := remapTree(ov.Upper, func(id uint32) uint32 {
		switch {
		case r.Contains(id):
			return id - r.Start
		case id == r.Size:
			// host root's, written through ward's overlay while the
			// container ran (newUpperNamespace)
			return 0
		}
		return id
	})
	if err != nil {
		return "", err
	}
	ns, err := newUpperNamespace(r)
	if err != nil {
		return "", err
	}
	defer ns.Close()
	note := ""
	if n > 0 {
		note = fmt.Sprintf("; %d entries stored with host IDs given back to the container's", n)
	}
	u := filepath.Join(dir, "u")
	if err := os.Mkdir(u, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return note, fmt.Errorf("idmapping the upper layer: %w", err)
	}
	if err := ns.IdmapBind(filepath.Dir(ov.Upper), u); err != nil {
		os.Remove(u)
		return note, err
	}
	opts := lowerOpts + ",upperdir=" + filepath.Join(u, filepath.Base(ov.Upper)) + ",workdir=" + filepath.Join(u, "ward-work")
	if err := mountAsBlock(r, rf.Path, opts); err != nil {
		unix.Unmount(u, unix.MNT_DETACH)
		os.Remove(u)
		return note, err
	}
	rf.Dirs = append(rf.Dirs, u)
	rf.Mounts = append(rf.Mounts, u, rf.Path)
	rf.Layer = ov.Upper
	rf.How = fmt.Sprintf("overlay of %s re-mounted with %d idmapped lower layers and an idmapped upper layer%s", mi.Mountpoint, len(ov.Lower), note)
	return note, nil
}

// mountAsBlock mounts an overlay with the block's root as the filesystem
// user and group IDs of the mounting thread, capabilities kept: overlayfs
// records the mounter's credentials and creates its work files and
// copies up with them, through the idmapped upper layer, where host root
// is not mapped. The thread is locked and never unlocked, so that it ends
// with the goroutine and no other code runs with its credentials. A mount
// whose workdir could not be made comes up read-only instead of failing:
// that counts as failure.
func mountAsBlock(r Range, target, opts string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			// setfsuid reports the previous ID, never an error.
			unix.Setfsgid(int(r.Start))
			unix.Setfsuid(int(r.Start))
			// Leaving fsuid 0 clears the effective filesystem
			// capabilities; the permitted set still has them.
			hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
			var data [2]unix.CapUserData
			if err := unix.Capget(&hdr, &data[0]); err != nil {
				return fmt.Errorf("reading capabilities: %w", err)
			}
			data[0].Effective, data[1].Effective = data[0].Permitted, data[1].Permitted
			if err := unix.Capset(&hdr, &data[0]); err != nil {
				return fmt.Errorf("raising capabilities: %w", err)
			}
			if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
				return fmt.Errorf("mounting the overlay with an idmapped upper layer: %w", err)
			}
			var sfs unix.Statfs_t
			if err := unix.Statfs(target, &sfs); err != nil || sfs.Flags&unix.ST_RDONLY != 0 {
				unix.Unmount(target, unix.MNT_DETACH)
				return fmt.Errorf("the overlay with an idmapped upper layer came up read-only (%v)", err)
			}
			return nil
		}()
	}()
	return <-errc
}

// mountOverlay mounts the overlay with ward's layers at rf.Path.
func (rf *Rootfs) mountOverlay(opts string, mi MountInfo, lowers int, note string) error {
	if len(opts) >= os.Getpagesize() {
		return fmt.Errorf("overlay options for %d layers exceed a page", lowers)
	}
	if err := unix.Mount("overlay", rf.Path, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting the overlay with idmapped layers: %w", err)
	}
	rf.Mounts = append(rf.Mounts, rf.Path)
	rf.How = fmt.Sprintf("overlay of %s re-mounted with %d idmapped lower layers%s", mi.Mountpoint, lowers, note)
	return nil
}

// WritableLayer returns the upper directory of the overlay mounted at
// rootfs, the layer that holds what the container writes, or "" when
// rootfs is not an overlay mount or has no upper layer.
func WritableLayer(rootfs string) (string, error) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(rootfs, &sfs); err != nil {
		return "", fmt.Errorf("reading the root filesystem: %w", err)
	}
	if sfs.Type != unix.OVERLAYFS_SUPER_MAGIC {
		return "", nil
	}
	mi, ok, err := MountAt(rootfs)
	if err != nil || !ok || mi.FSType != "overlay" {
		return "", err
	}
	ov, err := ParseOverlay(mi.Super)
	if err != nil {
		return "", err
	}
	return ov.Upper, nil
}

// GiveUpperTop gives the top directory of an overlay's upper layer to the
// mapped root when it is host root's. Overlayfs refuses an idmapped upper
// layer to a mounter outside the mapping, and the merged root directory
// takes its owner from the upper layer's: without this, container root
// could not create files in /. It is the one inode ward changes; the
// layer's files are the container's own writes.
func GiveUpperTop(upper string, r Range) error {
	var st unix.Stat_t
	if err := unix.Stat(upper, &st); err != nil {
		return fmt.Errorf("reading the upper layer: %w", err)
	}
	if st.Uid != 0 || st.Gid != 0 {
		return nil
	}
	if err := os.Chown(upper, int(r.Start), int(r.Start)); err != nil {
		return fmt.Errorf("giving the upper layer's top directory to the mapped root: %w", err)
	}
	return nil
}

// Release unmounts and removes what IdmapRootfs made. Directories are
// removed one by one, never recursively, except ward's overlay workdir:
// a directory whose unmount failed must not have its contents, the image's
// layers, deleted through it.
func (rf *Rootfs) Release() error {
	var errs []error
	for i := len(rf.Mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(rf.Mounts[i], unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", rf.Mounts[i], err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for i := len(rf.Dirs) - 1; i >= 0; i-- {
		d := rf.Dirs[i]
		var err error
		if filepath.Base(d) == "ward-work" {
			err = os.RemoveAll(d)
		} else {
			err = os.Remove(d)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ChownTree is the explicit fallback for a root filesystem that cannot be
// idmapped: every file owned by an ID below r.Size is given to the host ID
// it maps to. It changes the files themselves (through an overlay, it
// copies each one up), so it is slow and only runs when the policy says
// so; it also gives an overlay's upper layer to the block at create (see
// IdmapRootfs).
func ChownTree(root string, r Range) (int, error) {
	return remapTree(root, func(id uint32) uint32 {
		if id < r.Size {
			return id + r.Start
		}
		return id
	})
}

// UnchownTree undoes ChownTree: every file owned by a host ID of r is
// given back the container ID it stands for. ward-runtime runs it on an
// overlay's upper layer at delete, so that what the container wrote is
// stored as the container saw it whenever the container is not running:
// `docker commit` of a stopped container, and each step of a classic
// `docker build`, then produce layers owned as under runc.
func UnchownTree(root string, r Range) (int, error) {
	return remapTree(root, func(id uint32) uint32 {
		if r.Contains(id) {
			return id - r.Start
		}
		return id
	})
}

// remapTree changes the owner of every entry below root to what remap
// says, keeping what chown clears: setuid and setgid bits and file
// capabilities.
func remapTree(root string, remap func(uint32) uint32) (int, error) {
	n := 0
	capBuf := make([]byte, 64)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no ownership information", p)
		}
		uid, gid := remap(st.Uid), remap(st.Gid)
		if uid == st.Uid && gid == st.Gid {
			return nil
		}
		mode := fi.Mode()
		var caps []byte
		if mode.IsRegular() {
			if c, err := unix.Lgetxattr(p, "security.capability", capBuf); err == nil && c > 0 {
				caps = append([]byte(nil), capBuf[:c]...)
			}
		}
		if err := os.Lchown(p, int(uid), int(gid)); err != nil {
			return err
		}
		// chown clears setuid and setgid bits and file capabilities;
		// restore them.
		if mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 && mode&fs.ModeSymlink == 0 {
			if err := os.Chmod(p, mode); err != nil {
				return err
			}
		}
		if caps != nil {
			if err := unix.Lsetxattr(p, "security.capability", caps, 0); err != nil {
				return fmt.Errorf("restoring the file capabilities of %s: %w", p, err)
			}
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("changing owners under %s: %w", root, err)
	}
	return n, nil
}

// AdoptHostRootWrites gives to the container's root (or group) what host
// root wrote through ward's overlay while the container runs (podman cp
// joins the container's mount namespace): the idmapped upper layer stores
// host root as the ID past the block (r.Size), which the container sees as
// nobody until the next create gives it back (idmappedUpper). Entries are
// found on the layer itself, where only host root's writes can carry that
// ID (the container's own are stored as 0..r.Size-1), and changed through
// ward's overlay, as host root, to the block's root: the overlay stores 0
// and refreshes its own copy of the entry's owner, so that permission
// checks inside see root at once, not at the inode's next lookup.
//
// The container may change its tree meanwhile: each entry is opened below
// the overlay's root with no symbolic link followed on the way
// (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), and changed through that
// descriptor, so that host root never acts on a path the container
// redirected. A setuid or setgid mode that chown clears is restored; file
// capabilities are not (chown drops them, as a copy's would be by a tool
// that does not keep them). It returns how many entries it changed; a
// rootfs without an idmapped layer has none.
func (rf *Rootfs) AdoptHostRootWrites(r Range) (int, error) {
	if rf == nil || rf.Layer == "" {
		return 0, nil
	}
	root, err := unix.Open(rf.Path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("opening the container's root filesystem: %w", err)
	}
	defer unix.Close(root)
	n := 0
	err = filepath.WalkDir(rf.Layer, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || (st.Uid != r.Size && st.Gid != r.Size) || p == rf.Layer {
			return nil
		}
		rel, err := filepath.Rel(rf.Layer, p)
		if err != nil {
			return err
		}
		changed, err := adopt(root, rel, st, r)
		if err != nil {
			return fmt.Errorf("giving %s to the container's root: %w", rel, err)
		}
		if changed {
			n++
		}
		return nil
	})
	return n, err
}

// adopt changes one entry, reached below root without following links.
func adopt(root int, rel string, raw *syscall.Stat_t, r Range) (bool, error) {
	fd, err := unix.Openat2(root, rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
		// Gone, or reached only through a link now: the container moved
		// it; the next create gives it back.
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, err
	}
	// Through the overlay only the layer's entries stored as the ID past
	// the block are host root's (that ID maps to host root in the layer's
	// mount and in no lower layer's): anything else is not host root's
	// write, or no longer.
	if st.Uid != 0 && st.Gid != 0 {
		return false, nil
	}
	uid, gid := -1, -1
	if st.Uid == 0 && raw.Uid == r.Size {
		uid = int(r.Start)
	}
	if st.Gid == 0 && raw.Gid == r.Size {
		gid = int(r.Start)
	}
	if uid == -1 && gid == -1 {
		return false, nil
	}
	if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		return false, err
	}
	mode := st.Mode & (unix.S_ISUID | unix.S_ISGID | 0o7777)
	if st.Mode&(unix.S_ISUID|unix.S_ISGID) != 0 && st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode); err != nil {
			return true, fmt.Errorf("restoring its mode: %w", err)
		}
	}
	return true, nil
}
