// Package input is the one home of recpol's CUE input. Its Loader reads a
// one-file input (the runtime config, a scenario, an expectations file)
// within a size limit, compiles it, unifies it with its schema, and
// reports every problem as a Diagnostic: a code, a file:line:col position,
// the CUE path concerned and a message, printed one a line by Print the
// way `recpol vet` prints a policy's. The compiler evaluates a policy's
// many files itself, but its diagnostics are this package's, worded with
// its helpers (Restate, Disjunction, NotAllowed, PathString).
//
// Positions come from CUE's errors (errors.Errors, errors.Positions,
// Error.Msg), never from the text of a message. A schema's own positions
// are never reported: a diagnostic points at the input file, or names it
// alone when no place in it can be found.
//
// The package imports nothing of recpol's but internal helpers, so every
// package that reads CUE (compiler, runtime, scenario, simulate, the CLI)
// may import it.
package input
