// Command mkimage builds gatehouse's container image without a base image
// or an image registry: one layer holding the static gatehouse binary, the
// build machine's CA certificates, a passwd entry for the non-root user
// 65532 and the directories gatehouse uses, written as a docker-archive
// tarball that `podman load` and `docker load` accept. `make image` runs it.
//
// It imports go-containerregistry and the standard library, and nothing of
// gatehouse's packages: it reads the version and commit from the binary's
// own build information.
package main
