//go:build !linux

package image

import (
	"context"
	"io"
	"log/slog"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/isol8/isol8/api"
)

var errNotLinux = api.NotImplementedf("building isol8 images needs Linux")

func buildBaseRootfs(context.Context, baseBuild) error { return errNotLinux }

func buildAptLayer(context.Context, aptBuild, func(func(io.Writer) error) (ocispec.Descriptor, error)) (ocispec.Descriptor, error) {
	return ocispec.Descriptor{}, errNotLinux
}

func writeDirTar(io.Writer, string, string) error { return errNotLinux }

func pruneBaseDirs(string, string, *slog.Logger) {}

func lockDir(context.Context, string, func()) (func() error, error) { return nil, errNotLinux }

func writeInstallLayer(io.Writer, string, string) error { return errNotLinux }

func mountScratch(string, int64) (func() error, error) { return nil, errNotLinux }
