// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
//
// ward's sensor: what a container does that seccomp cannot judge, seen at
// syscall tracepoints (no kprobes, fentry or BPF-LSM: nodes without them
// must work).
//
//  - a file opened for writing that is a cgroup v1 release_agent or
//    notify_on_release, anything under /proc/sys (core_pattern among it),
//    /proc/sysrq-trigger, or sysfs's uevent_helper: judged by the opened
//    file itself (its filesystem and its dentries), not by how the path was
//    spelt;
//  - the same attempt when the open failed (read-only /proc/sys, a masked
//    path): judged by the path string, the only thing left;
//  - a block device, or a character device other than the ones every
//    container has (null, zero, full, random, urandom, tty, console, ptmx,
//    pts, fuse, net/tun), opened;
//  - a program executed from a file that a process of the same container
//    opened for writing after it started (drift), judged by the file the
//    new program image is mapped from (after binfmt: a script's
//    interpreter, not the script), with the provenance of the file: who
//    wrote it, and whether every writer was a build tool of the image
//    (`toolchain`, below) running from the image's own lower layer.
//
// Only processes in the cgroups user space lists in `containers` (or
// below them) are looked at; everything else returns after a few map
// lookups.
//
// Build: go generate ./internal/sensor (bpf2go, clang, libbpf-dev headers).

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// Kernel types, only the fields read; CO-RE relocates them against the
// running kernel's BTF.
struct qstr {
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct super_block {
	__u32 s_dev;
	unsigned long s_magic;
} __attribute__((preserve_access_index));

struct inode {
	unsigned short i_mode;
	unsigned long i_ino;
	__u32 i_rdev;
	struct super_block *i_sb;
} __attribute__((preserve_access_index));

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
} __attribute__((preserve_access_index));

struct vfsmount {
	struct super_block *mnt_sb;
} __attribute__((preserve_access_index));

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
	struct inode *f_inode;
	unsigned int f_mode;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct mnt_namespace {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct nsproxy {
	struct mnt_namespace *mnt_ns;
} __attribute__((preserve_access_index));

struct fs_struct {
	struct path root;
} __attribute__((preserve_access_index));

struct mm_struct {
	struct file *exe_file;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	struct files_struct *files;
	struct nsproxy *nsproxy;
	struct fs_struct *fs;
	struct mm_struct *mm;
} __attribute__((preserve_access_index));

// overlayfs's inode around the VFS one: __upperdentry is set once the
// file has a copy in the writable (upper) layer. Built into the kernel it
// is in vmlinux's BTF; where it is not (overlay as a module), the
// program reads nothing of it and no writer counts as the image's.
struct ovl_inode {
	struct inode vfs_inode;
	struct dentry *__upperdentry;
} __attribute__((preserve_access_index));

struct linux_binprm {
	struct file *file;
	const char *filename;
} __attribute__((preserve_access_index));

#define FMODE_WRITE 0x2
#define S_IFMT 00170000
#define S_IFREG 0100000
#define S_IFBLK 0060000
#define S_IFCHR 0020000
#define O_ACCMODE 00000003
#define O_WRONLY 00000001
#define O_RDWR 00000002
#define O_CREAT 00000100
#define O_TRUNC 00001000

#define PROC_SUPER_MAGIC 0x9fa0
#define CGROUP_SUPER_MAGIC 0x27e0eb
#define SYSFS_MAGIC 0x62656572
#define OVERLAYFS_SUPER_MAGIC 0x794c7630

#define MINORBITS 20
#define MAJOR(dev) ((unsigned int)((dev) >> MINORBITS))
#define MINOR(dev) ((unsigned int)((dev) & ((1U << MINORBITS) - 1)))

// Event kinds; internal/sensor's Kind mirrors them.
enum kind {
	KIND_WRITE = 1,        // a sensitive file opened for writing
	KIND_WRITE_FAILED = 2, // an open for writing that failed: path string only
	KIND_DEVICE = 3,       // a host device opened
	KIND_EXEC_WRITTEN = 4, // a file written in the container, executed
};

#define NAME_LEN 32
#define NAMES 6
#define PATH_LEN 256
#define MAX_LEVELS 16

// Provenance of a written file (struct written_by's and the exec event's
// flags); internal/sensor's Writer* mirror them.
enum writer_flags {
	WRITER_IMAGE = 1,     // the last writer's executable is a lower-layer file of the container's root overlay
	WRITER_TOOLCHAIN = 2, // every writer so far was a toolchain executable of the image
};

struct event {
	__u64 cgroup;   // the watched cgroup the process is in (or below)
	__u64 ino;      // the file's inode
	__u32 dev;      // its filesystem's device (kernel encoding)
	__u32 rdev;     // a device file's device
	__u32 pid;      // thread-group ID, in the node's PID namespace
	__u32 tid;
	__u32 kind;
	__s32 ret;      // the open's result (a negative errno when it failed)
	__u32 flags;    // the open's flags
	__u32 mode;     // the file's i_mode
	__u32 magic;    // its filesystem's magic
	__u32 mntns;    // the process's mount namespace
	char comm[16];
	// names are the file's dentries, leaf first, up to NAMES of them.
	char names[NAMES][NAME_LEN];
	// path is the path string of a failed open, or an executed file's name.
	char path[PATH_LEN];
	// An executed written file's writer: its executable's name (the last
	// writer; the first that was not the image's toolchain, if any was
	// not) and WRITER_* flags.
	char writer[NAME_LEN];
	__u32 writer_flags;
	__u32 pad2;
};

// Force the type into BTF for bpf2go.
const struct event *unused_event __attribute__((unused));

// containers: the cgroup IDs (cgroup v2) of ward's containers.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u8);
} containers SEC(".maps");

// pending: an open in progress in a watched container, by thread.
struct pending_open {
	__u64 cgroup;
	__u64 filename; // user pointer
	__u32 flags;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct pending_open);
} pending SEC(".maps");

// written: regular files opened for writing in a watched container, by
// (device, inode): the container's cgroup and who wrote the file.
struct file_key {
	__u32 dev;
	__u32 pad;
	__u64 ino;
};

struct written_by {
	__u64 cgroup;
	__u32 flags; // WRITER_*
	__u32 pad;
	char writer[NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct file_key);
	__type(value, struct written_by);
} written SEC(".maps");

// toolchain: the executable names of build and packaging tools (linkers,
// strip, dpkg, ...; internal/sensor's Toolchain fills it at load), also
// matched after a target triplet (x86_64-linux-gnu-ld.bfd is ld.bfd).
struct tool_name {
	char name[NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct tool_name);
	__type(value, __u8);
} toolchain SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

// watched returns the watched cgroup the current task is in or below, 0
// when none: a container's own child cgroups are still the container.
static __always_inline __u64 watched(void)
{
	__u64 id = bpf_get_current_cgroup_id();
	if (bpf_map_lookup_elem(&containers, &id))
		return id;
	for (int level = 1; level < MAX_LEVELS; level++) {
		id = bpf_get_current_ancestor_cgroup_id(level);
		if (id == 0)
			return 0;
		if (bpf_map_lookup_elem(&containers, &id))
			return id;
	}
	return 0;
}

// The syscalls tracepoints' records: 8 bytes of common fields, the
// syscall number, then each argument (or the return value) as 8 bytes.
struct sys_enter_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};

struct sys_exit_ctx {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

static __always_inline int enter_open(__u64 filename, __u32 flags)
{
	__u64 cg = watched();
	if (!cg)
		return 0;
	struct pending_open p = {.cgroup = cg, .filename = filename, .flags = flags};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&pending, &tid, &p, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct sys_enter_ctx *ctx)
{
	return enter_open(ctx->args[1], (__u32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_open")
int enter_open_plain(struct sys_enter_ctx *ctx)
{
	return enter_open(ctx->args[0], (__u32)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_creat")
int enter_creat(struct sys_enter_ctx *ctx)
{
	return enter_open(ctx->args[0], O_CREAT | O_WRONLY | O_TRUNC);
}

struct open_how {
	__u64 flags;
	__u64 mode;
	__u64 resolve;
};

SEC("tracepoint/syscalls/sys_enter_openat2")
int enter_openat2(struct sys_enter_ctx *ctx)
{
	struct open_how how = {};
	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return enter_open(ctx->args[1], (__u32)how.flags);
}

static __always_inline int name_is(const char *buf, const char *lit, int n)
{
	for (int i = 0; i < n; i++)
		if (buf[i] != lit[i])
			return 0;
	return 1;
}

// allowed_char: the character devices every container gets.
static __always_inline int allowed_char(__u32 rdev)
{
	unsigned int maj = MAJOR(rdev), min = MINOR(rdev);
	switch (maj) {
	case 1: // null, zero, full, random, urandom
		return min == 3 || min == 5 || min == 7 || min == 8 || min == 9;
	case 5: // tty, console, ptmx
		return min <= 2;
	case 10: // fuse, net/tun
		return min == 229 || min == 200;
	}
	return maj >= 136 && maj <= 143; // pts
}

static __always_inline struct event *new_event(__u64 cg, __u32 kind)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	__u64 pt = bpf_get_current_pid_tgid();
	e->cgroup = cg;
	e->kind = kind;
	e->pid = pt >> 32;
	e->tid = (__u32)pt;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->mntns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	return e;
}

// fill_file records the file's identity and dentries, leaf first.
static __always_inline void fill_file(struct event *e, struct file *f)
{
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	e->ino = BPF_CORE_READ(ino, i_ino);
	e->dev = BPF_CORE_READ(ino, i_sb, s_dev);
	e->rdev = BPF_CORE_READ(ino, i_rdev);
	e->mode = BPF_CORE_READ(ino, i_mode);
	e->magic = (__u32)BPF_CORE_READ(ino, i_sb, s_magic);
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	for (int i = 0; i < NAMES; i++) {
		const unsigned char *name = BPF_CORE_READ(d, d_name.name);
		bpf_probe_read_kernel_str(e->names[i], NAME_LEN, name);
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		if (parent == d)
			break;
		d = parent;
	}
}

// top_dentry is d's ancestor just below its filesystem's root (d itself
// when d is directly below it), or 0 past 16 levels.
static __always_inline struct dentry *top_dentry(struct dentry *d)
{
	for (int i = 0; i < 16; i++) {
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		struct dentry *grand = BPF_CORE_READ(parent, d_parent);
		if (parent == grand)
			return d;
		d = parent;
	}
	return 0;
}

// sensitive says whether a file opened for writing is one the sensor
// reports, judged by its filesystem and names.
static __always_inline int sensitive(struct file *f)
{
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	unsigned long magic = BPF_CORE_READ(ino, i_sb, s_magic);
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	char name[NAME_LEN] = {};
	if (magic == CGROUP_SUPER_MAGIC || magic == SYSFS_MAGIC) {
		bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(d, d_name.name));
		if (magic == SYSFS_MAGIC)
			return name_is(name, "uevent_helper", 14);
		return name_is(name, "release_agent", 14) || name_is(name, "notify_on_release", 18);
	}
	if (magic != PROC_SUPER_MAGIC)
		return 0;
	struct dentry *top = top_dentry(d);
	if (!top)
		return 0;
	bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(top, d_name.name));
	return name_is(name, "sys", 4) || name_is(name, "sysrq-trigger", 14);
}

static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

// image_file says whether f is a file of the image the container runs:
// on the overlay that is the task's root, present in a lower (read-only)
// layer and never copied up. Nothing a container does at run time can
// make such a file: writing, renaming or linking one copies it up first.
static __always_inline int image_file(struct task_struct *task, struct file *f)
{
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	struct super_block *sb = BPF_CORE_READ(ino, i_sb);
	if (BPF_CORE_READ(sb, s_magic) != OVERLAYFS_SUPER_MAGIC)
		return 0;
	if (sb != BPF_CORE_READ(task, fs, root.mnt, mnt_sb))
		return 0;
	if (!bpf_core_type_exists(struct ovl_inode))
		return 0;
	struct ovl_inode *oi = (void *)ino - bpf_core_field_offset(struct ovl_inode, vfs_inode);
	return BPF_CORE_READ(oi, __upperdentry) == 0;
}

// TOOL_LEN bounds a toolchain name (internal/sensor's maxToolName).
#define TOOL_LEN 15

// tool says whether the executable name kname (n bytes with its NUL, name
// its copy) is in toolchain, whole or after a target triplet
// (x86_64-linux-gnu-ld.bfd is ld.bfd): for each length k a toolchain name
// may have, whether the name ends in '-' and k more bytes that are one.
// The tail is read from kernel memory at a computed address, so that the
// verifier sees a few helper calls per k rather than a scan whose every
// branch is a state of its own (measured: that made the load 9 times
// slower, 30 ms to 240 ms; this one about 1.2 times).
static __always_inline int tool(const char *name, const unsigned char *kname, long n)
{
	if (bpf_map_lookup_elem(&toolchain, name))
		return 1;
	long len = n - 1;
	for (int k = 1; k <= TOOL_LEN; k++) {
		if (len <= k)
			return 0;
		char dash = 0;
		bpf_probe_read_kernel(&dash, 1, kname + len - k - 1);
		if (dash != '-')
			continue;
		struct tool_name tail = {};
		bpf_probe_read_kernel(tail.name, k, kname + len - k);
		if (bpf_map_lookup_elem(&toolchain, &tail))
			return 1;
	}
	return 0;
}

// record_write keeps who opened the regular file f for writing in the
// container cg. A file stays a build artefact only while every writer was
// the image's toolchain: one other writer (appending to a linked binary,
// say) makes it drift for good, and names that writer.
static __always_inline void record_write(__u64 cg, struct inode *ino)
{
	struct file_key k = {.dev = BPF_CORE_READ(ino, i_sb, s_dev), .ino = BPF_CORE_READ(ino, i_ino)};
	struct written_by w = {.cgroup = cg};
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	if (exe) {
		struct dentry *d = BPF_CORE_READ(exe, f_path.dentry);
		const unsigned char *kname = BPF_CORE_READ(d, d_name.name);
		long n = bpf_probe_read_kernel_str(w.writer, NAME_LEN, kname);
		if (n > 1 && image_file(task, exe)) {
			w.flags |= WRITER_IMAGE;
			if (tool(w.writer, kname, n))
				w.flags |= WRITER_TOOLCHAIN;
		}
	}
	struct written_by *old = bpf_map_lookup_elem(&written, &k);
	if (old && old->cgroup == cg && !(old->flags & WRITER_TOOLCHAIN) && (w.flags & WRITER_TOOLCHAIN))
		return;
	bpf_map_update_elem(&written, &k, &w, BPF_ANY);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int exit_open(struct sys_exit_ctx *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_open *p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;
	struct pending_open po = *p;
	bpf_map_delete_elem(&pending, &tid);
	__s64 ret = ctx->ret;
	int wants_write = (po.flags & O_ACCMODE) == O_WRONLY || (po.flags & O_ACCMODE) == O_RDWR ||
			  (po.flags & (O_CREAT | O_TRUNC));

	if (ret < 0) {
		if (!wants_write)
			return 0;
		struct event *e = new_event(po.cgroup, KIND_WRITE_FAILED);
		if (!e)
			return 0;
		e->ret = (__s32)ret;
		e->flags = po.flags;
		bpf_probe_read_user_str(e->path, PATH_LEN, (void *)po.filename);
		bpf_ringbuf_submit(e, 0);
		return 0;
	}

	struct file *f = fd_file((int)ret);
	if (!f)
		return 0;
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	__u32 mode = BPF_CORE_READ(ino, i_mode);
	__u32 kind = 0;
	if ((mode & S_IFMT) == S_IFBLK ||
	    ((mode & S_IFMT) == S_IFCHR && !allowed_char(BPF_CORE_READ(ino, i_rdev))))
		kind = KIND_DEVICE;
	if (BPF_CORE_READ(f, f_mode) & FMODE_WRITE) {
		if ((mode & S_IFMT) == S_IFREG)
			record_write(po.cgroup, ino);
		if (!kind && sensitive(f))
			kind = KIND_WRITE;
	}
	if (!kind)
		return 0;
	struct event *e = new_event(po.cgroup, kind);
	if (!e)
		return 0;
	e->ret = (__s32)ret;
	e->flags = po.flags;
	fill_file(e, f);
	bpf_probe_read_user_str(e->path, PATH_LEN, (void *)po.filename);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

// exec judges what runs: at sched_process_exec the binfmt handlers have
// resolved bprm->file to the file the new image is mapped from (a script's
// interpreter, not the script; a script read by an interpreter is data,
// and could as well be passed to it as an argument).
SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	__u64 cg = watched();
	if (!cg)
		return 0;
	struct file *f = BPF_CORE_READ(bprm, file);
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	struct file_key k = {.dev = BPF_CORE_READ(ino, i_sb, s_dev), .ino = BPF_CORE_READ(ino, i_ino)};
	struct written_by *by = bpf_map_lookup_elem(&written, &k);
	if (!by || by->cgroup != cg)
		return 0;
	struct written_by w = *by;
	struct event *e = new_event(cg, KIND_EXEC_WRITTEN);
	if (!e)
		return 0;
	__builtin_memcpy(e->writer, w.writer, NAME_LEN);
	e->writer_flags = w.flags;
	fill_file(e, f);
	bpf_probe_read_kernel_str(e->path, PATH_LEN, BPF_CORE_READ(bprm, filename));
	bpf_ringbuf_submit(e, 0);
	return 0;
}
