package runtime

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"
)

// ApplyMemoryLimit sets the process's soft memory limit
// (debug.SetMemoryLimit) to the config's memory_limit_mb, unless the
// GOMEMLIMIT environment variable is set: Go applied that one when the
// process started, and it wins. It logs the limit in force at Info and
// returns it in bytes (math.MaxInt64: none). The limit is the whole
// process's: `recpol run` applies it; a program that embeds a runtime
// decides its own. /metrics shows the limit in force as
// go_gc_gomemlimit_bytes.
func ApplyMemoryLimit(cfg *Config, log *slog.Logger) int64 {
	limit, source := memoryLimit(cfg.MemoryLimit, os.Getenv("GOMEMLIMIT"), debug.SetMemoryLimit)
	if limit == math.MaxInt64 {
		log.Info("no memory limit", "source", source)
	} else {
		log.Info("memory limit", "limit_mb", limit>>20, "source", source)
	}
	return limit
}

// memoryLimit applies the limit of the config, in bytes (0: none), with
// set unless env (GOMEMLIMIT) is set, and returns the limit in force and
// where it came from: "GOMEMLIMIT" or "memory_limit_mb".
func memoryLimit(config int64, env string, set func(int64) int64) (limit int64, source string) {
	if env != "" {
		return set(-1), "GOMEMLIMIT" // -1 reads the limit, changing nothing
	}
	if config <= 0 {
		config = math.MaxInt64
	}
	set(config)
	return set(-1), "memory_limit_mb"
}
