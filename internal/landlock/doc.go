// Package landlock is ward's Landlock ruleset model, shared by the rewrite
// (harden) and the launcher that runs inside containers (cmd/ward-init).
//
// The layers follow go-landlock's, on which enforcement is built:
//
//   - Profile: what an operator writes (or ward ships): access to the
//     rootfs, to volumes and to named paths, TCP port allow-lists, IPC
//     scopes. A value, validated once.
//   - Ruleset: a profile resolved against one container's spec (read-only
//     or writable rootfs, its mounts). The rewrite encodes it into the
//     container's environment (EnvVar); it is small, plain JSON.
//   - Plan: the ruleset turned into concrete path grants against the
//     container's real filesystem. Landlock only ever adds rights down a
//     hierarchy, so a directory that would give both "write" to one path
//     and "execute" to another below it is split into its entries. Plan is
//     pure given a directory lister, and table-tested.
//   - Degrade: which requested rights the running kernel's ABI cannot
//     enforce. Pure, table-tested.
//   - Enforce and Launch (Linux only): the irreversible part, in ward-init.
//
// Access is expressed in three letters, r (read files, list directories),
// w (write, truncate, create, remove, rename) and x (execute), so that
// profiles read like the W^X rule they state. Device ioctls and pathname
// UNIX sockets are not handled: the device cgroup and the mount table
// already govern them, and handling them would break terminals and mounted
// sockets for no gain.
package landlock
