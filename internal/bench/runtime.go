package bench

import "context"

// runtimeFigures measures the runtime against the fake switch.
func (r *runner) runtimeFigures(ctx context.Context) {}
