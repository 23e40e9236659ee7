package engine

import (
	"context"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/isol8/isol8/internal/userns"
	"github.com/isol8/isol8/oci"
)

// UserNSOptions is the subordinate id range sandboxes get their host
// identities from: Count slots of Size ids from Base, recorded in lock files
// under StateDir. Zero fields take the defaults (1000000, 65536, 1024,
// /var/lib/isol8/userns). It is operator configuration, never taken from
// clients.
type UserNSOptions struct {
	Base     uint32
	Size     uint32
	Count    int
	StateDir string
}

// identities allocates host identities to sandboxes.
type identities struct {
	alloc *userns.Allocator
	tools userns.Tools
}

// startIdentities prepares the allocator; a range colliding with a host
// account refuses to start.
func (h *Host) startIdentities() error {
	if h.identify != nil {
		return nil // identities come from h.identify (unit tests)
	}
	var o UserNSOptions
	if h.opts.UserNS != nil {
		o = *h.opts.UserNS
	}
	cfg := userns.Config{Base: o.Base, Size: o.Size, Count: o.Count, Dir: o.StateDir}.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return invalid(err)
	}
	if err := userns.CheckHost(cfg, userns.DefaultHostFiles); err != nil {
		return invalid(err)
	}
	tools, err := userns.LookTools()
	if err != nil {
		return err
	}
	alloc, err := userns.New(cfg)
	if err != nil {
		return err
	}
	h.ids = &identities{alloc: alloc, tools: tools}
	return nil
}

// identity is one sandbox's host id range and, until its container exists,
// the user namespace made for it.
type identity struct {
	lease  *userns.Lease
	holder *userns.Holder
}

// identityFunc gives sandbox id its host identity and puts it into spec.
type identityFunc func(ctx context.Context, id string, spec *specs.Spec) (*identity, error)

// newIdentity allocates a host id range for sandbox id, makes its user
// namespace and puts both into spec.
func (h *Host) newIdentity(ctx context.Context, id string, spec *specs.Spec) (_ *identity, retErr error) {
	if h.identify != nil {
		return h.identify(ctx, id, spec)
	}
	lease, err := h.ids.alloc.Allocate(id)
	if err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	ident := &identity{lease: lease}
	defer func() {
		if retErr != nil {
			ident.release(true)
		}
	}()
	ident.holder, err = userns.NewHolder(ctx, h.ids.tools, lease.HostID, lease.Size)
	if err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	for _, opt := range []oci.Opt{oci.WithUserNamespace(ident.holder.Path(), lease.HostID, lease.Size), oci.WithNofileByInit()} {
		if err := opt(spec); err != nil {
			return nil, err
		}
	}
	return ident, nil
}

// created ends the namespace's holder: the container's processes keep the
// namespace alive from now on.
func (i *identity) created() {
	if i != nil && i.holder != nil {
		i.holder.Close()
		i.holder = nil
	}
}

// release frees the range once nothing of the sandbox runs any more (gone);
// otherwise the range stays recorded as taken, and is handed out again only
// when no host process has an id in it.
func (i *identity) release(gone bool) {
	if i == nil {
		return
	}
	i.created()
	if gone {
		_ = i.lease.Release()
	} else {
		_ = i.lease.Abandon()
	}
}
