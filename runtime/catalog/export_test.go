package catalog

import "context"

// CommitGroup runs the ops lists as one group of the writer, as if that
// many Apply calls had arrived together, and returns each one's error.
func (c *Catalog) CommitGroup(ctx context.Context, groups ...[]Op) []error {
	reqs := make([]*request, len(groups))
	dones := make([]chan error, len(groups))
	for i, ops := range groups {
		dones[i] = make(chan error, 1)
		reqs[i] = &request{ctx: ctx, ops: ops, done: dones[i]}
	}
	// The writer is idle between Apply calls; holding no request, it
	// cannot touch the transaction built here.
	c.commitGroup(reqs)
	errs := make([]error, len(reqs))
	for i, done := range dones {
		errs[i] = <-done
	}
	return errs
}
