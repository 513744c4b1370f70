package runtime

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/recpol/recpol/compiler/isolate"
	recpolcue "github.com/recpol/recpol/cue"
	"github.com/recpol/recpol/cue/input"
	"github.com/recpol/recpol/internal/readlimit"
)

// Config is the runtime config, loaded from a CUE file by LoadConfig. Paths
// are absolute and secrets resolved.
type Config struct {
	File     string // the config file
	Name     string
	Switches []SwitchConfig
	Policies string
	Storage  string
	Spool    string
	Classify Classify
	HTTP     *HTTPConfig
	Uploads  []UploadConfig
	// Catalog says which database holds the recordings catalog.
	Catalog CatalogConfig
	// Retention is the days recordings are kept, by account ("": every
	// account without its own); absent or 0: forever.
	Retention map[string]int
	// LeaseTTL is how long a switch's lease lasts unrenewed.
	LeaseTTL time.Duration
	// UploadWorkers is how many uploads run at once.
	UploadWorkers int
	// UploadMaxAge is how long a failing upload is retried before it is
	// dead-lettered; UploadAlertAfter how old a pending upload may get
	// before /healthz says degraded.
	UploadMaxAge, UploadAlertAfter time.Duration
	// ReloadDebounce is how long the policy directory must be quiet
	// before a reload.
	ReloadDebounce time.Duration
	// Compile bounds each policy compile (compile_timeout_s,
	// compile_memory_mb), run in a child process.
	Compile isolate.Budget
	// MemoryLimit is the soft limit on the runtime's Go memory, in bytes
	// (memory_limit_mb; 0: none), applied by ApplyMemoryLimit.
	MemoryLimit int64
	LogLevel    slog.Level
	LogJSON     bool
}

// SwitchConfig is one FreeSWITCH node.
type SwitchConfig struct {
	Name     string
	Address  string
	Password Secret
	Owner    string
	// RecordDir is the directory FreeSWITCH records into, as the switch
	// sees it; LocalDir is the same directory as this runtime sees it.
	RecordDir string
	LocalDir  string
}

// CatalogConfig says which database holds the catalog.
type CatalogConfig struct {
	Driver string // "sqlite" or "postgres"
	// DSN is the SQLite file (empty: <spool>/store/catalog.db) or the
	// PostgreSQL connection string; a secret, never logged.
	DSN Secret
}

// HTTPConfig is the API and metrics listener.
type HTTPConfig struct {
	Listen string
	// Tokens are the API's bearer tokens; none: the /v1 API is disabled,
	// /healthz and /metrics stay. http.token is the token named "token",
	// with every right on every account.
	Tokens []Token
}

// Token is a named bearer token of the API, limited to a scope and to
// rights.
type Token struct {
	Name   string
	Secret Secret
	// Account limits the token to one account; empty: every account.
	Account string
	// Device limits it further to one device of Account.
	Device string
	Rights Rights
}

// Rights are what a token may do.
type Rights uint8

// The rights of a token.
const (
	// RightRead: list recordings and read their metadata and the audit.
	RightRead Rights = 1 << iota
	// RightMedia: download recordings' files.
	RightMedia
	// RightControl: act on calls (start, stop, mask, unmask, pause,
	// resume); with every account, reload the policy.
	RightControl
	// RightDelete: delete recordings, put and lift legal holds.
	RightDelete
	// AllRights is every right.
	AllRights = RightRead | RightMedia | RightControl | RightDelete
)

var rightNames = map[string]Rights{"read": RightRead, "media": RightMedia, "control": RightControl, "delete": RightDelete}

// String lists the rights, as in the config.
func (r Rights) String() string {
	var out []string
	for _, n := range []string{"read", "media", "control", "delete"} {
		if r&rightNames[n] != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// UploadConfig holds the credentials for upload URLs under a prefix.
type UploadConfig struct {
	Prefix   string
	Headers  map[string]Secret
	Username string
	Password Secret
}

// Classify says how legs are classified from their channel variables.
type Classify struct {
	Preset string // recpol, kazoo or freeswitch
	// Variable names; empty means the preset's.
	Account, Device, Owner, Network string
}

// Secret is a password or token. It prints as [redacted] in logs and
// formatted output; Reveal returns the value.
type Secret struct{ v string }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return s.v }

// String hides the secret.
func (s Secret) String() string { return "[redacted]" }

// LogValue hides the secret from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v} }

// rawConfig is the config as decoded from CUE.
type rawConfig struct {
	Name     string `json:"name"`
	Switches []struct {
		Address   string `json:"address"`
		Password  string `json:"password"`
		Name      string `json:"name"`
		Owner     string `json:"owner"`
		RecordDir string `json:"record_dir"`
		LocalDir  string `json:"local_dir"`
	} `json:"switches"`
	Policies string `json:"policies"`
	Storage  string `json:"storage"`
	Spool    string `json:"spool"`
	Classify struct {
		Preset    string            `json:"preset"`
		Variables map[string]string `json:"variables"`
	} `json:"classify"`
	HTTP *struct {
		Listen string `json:"listen"`
		Token  string `json:"token"`
		Tokens map[string]struct {
			Secret  string   `json:"secret"`
			Account string   `json:"account"`
			Device  string   `json:"device"`
			Rights  []string `json:"rights"`
		} `json:"tokens"`
	} `json:"http"`
	Uploads []struct {
		Prefix   string            `json:"prefix"`
		Headers  map[string]string `json:"headers"`
		Username string            `json:"username"`
		Password string            `json:"password"`
	} `json:"uploads"`
	ReloadDebounceMS int `json:"reload_debounce_ms"`
	CompileTimeoutS  int `json:"compile_timeout_s"`
	CompileMemoryMB  int `json:"compile_memory_mb"`
	MemoryLimitMB    int `json:"memory_limit_mb"`
	Catalog          struct {
		Driver string `json:"driver"`
		DSN    string `json:"dsn"`
	} `json:"catalog"`
	Retention *struct {
		Default  *int           `json:"default"`
		Accounts map[string]int `json:"accounts"`
	} `json:"retention"`
	UploadWorkers int `json:"upload_workers"`
	LeaseTTLS     int `json:"lease_ttl_s"`
	UploadMaxAgeS int `json:"upload_max_age_s"`
	UploadAlertS  int `json:"upload_alert_after_s"`
	Log           struct {
		Level  string `json:"level"`
		Format string `json:"format"`
	} `json:"log"`
}

// Size limits of the files a runtime config names: a config or a secret
// larger than these is refused, never read whole.
const (
	maxConfigBytes = 1 << 20
	maxSecretBytes = 64 << 10
)

// configLoader reads runtime configs against the #Runtime schema.
var configLoader = input.Loader{
	Kind:       "runtime config",
	SchemaName: "runtime.cue",
	Schema:     recpolcue.RuntimeSchema(),
	Definition: "#Runtime",
	MaxBytes:   maxConfigBytes,
}

// LoadConfig reads, validates and resolves a runtime config file. An
// invalid config's error wraps input.Diagnostics, each naming the file,
// line and column, as `recpol vet` names a policy's.
func LoadConfig(path string) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("reading runtime config: %w", err)
	}
	in, err := configLoader.ReadFile(path)
	if err != nil {
		return nil, configError(err)
	}
	var raw rawConfig
	if err := in.Decode(&raw); err != nil {
		return nil, configError(err)
	}
	return resolveConfig(abs, in, raw)
}

// configError says that an error is the runtime config's: diagnostics
// one a line after "runtime config:", any other error (reading the file)
// as it is.
func configError(err error) error {
	var ds input.Diagnostics
	if errors.As(err, &ds) {
		return fmt.Errorf("runtime config:\n%w", err)
	}
	return err
}

// resolveConfig resolves paths and secrets and checks what the schema
// cannot; in positions its errors.
func resolveConfig(file string, in *input.Input, raw rawConfig) (*Config, error) {
	dir := filepath.Dir(file)
	// invalid is an error about the value at path, positioned in the file.
	invalid := func(path, format string, args ...any) error {
		return configError(input.Diagnostics{in.Errorf(path, format, args...)})
	}
	rel := func(p string) string {
		if p == "" {
			return ""
		}
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(dir, p)
	}
	secret := func(what, s string) (Secret, error) {
		switch {
		case strings.HasPrefix(s, "env:"):
			name := strings.TrimPrefix(s, "env:")
			v, ok := os.LookupEnv(name)
			if !ok || v == "" {
				return Secret{}, fmt.Errorf("%s: environment variable %s is not set", what, name)
			}
			return Secret{v}, nil
		case strings.HasPrefix(s, "file:"):
			b, err := readlimit.File(rel(strings.TrimPrefix(s, "file:")), maxSecretBytes)
			if err != nil {
				return Secret{}, fmt.Errorf("%s: %w", what, err)
			}
			return Secret{strings.TrimRight(string(b), "\r\n")}, nil
		}
		return Secret{s}, nil
	}
	c := &Config{
		File:           file,
		Name:           raw.Name,
		Policies:       rel(raw.Policies),
		Storage:        rel(raw.Storage),
		Spool:          rel(raw.Spool),
		ReloadDebounce: time.Duration(raw.ReloadDebounceMS) * time.Millisecond,
		Compile:        isolate.Budget{Time: time.Duration(raw.CompileTimeoutS) * time.Second, Memory: uint64(raw.CompileMemoryMB) << 20},
		MemoryLimit:    int64(raw.MemoryLimitMB) << 20,
		UploadWorkers:  raw.UploadWorkers,
		UploadMaxAge:   time.Duration(raw.UploadMaxAgeS) * time.Second,
		LogJSON:        raw.Log.Format == "json",
	}
	c.UploadAlertAfter = time.Duration(raw.UploadAlertS) * time.Second
	c.LeaseTTL = time.Duration(raw.LeaseTTLS) * time.Second
	if c.Name == "" {
		// A name of its own for the leases: the host and the spool,
		// which no two runtimes share.
		host, _ := os.Hostname()
		host = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
				return r
			}
			return '-'
		}, host)
		if host == "" || !strings.ContainsAny(host[:1], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") {
			host = "recpol" + host
		}
		sum := sha256.Sum256([]byte(c.Spool))
		c.Name = fmt.Sprintf("%.40s-%x", host, sum[:4])
	}
	c.Catalog.Driver = raw.Catalog.Driver
	if raw.Catalog.DSN != "" {
		d, err := secret("catalog.dsn", raw.Catalog.DSN)
		if err != nil {
			return nil, fmt.Errorf("runtime config: %w", err)
		}
		if c.Catalog.Driver == "sqlite" {
			d = Secret{rel(d.Reveal())}
		}
		c.Catalog.DSN = d
	}
	if r := raw.Retention; r != nil {
		c.Retention = map[string]int{}
		if r.Default != nil {
			c.Retention[""] = *r.Default
		}
		for a, d := range r.Accounts {
			c.Retention[a] = d
		}
	}
	if err := c.LogLevel.UnmarshalText([]byte(raw.Log.Level)); err != nil {
		return nil, fmt.Errorf("runtime config: log.level: %w", err)
	}
	c.Classify = Classify{Preset: raw.Classify.Preset}
	for k, v := range raw.Classify.Variables {
		switch k {
		case "account":
			c.Classify.Account = v
		case "device":
			c.Classify.Device = v
		case "owner":
			c.Classify.Owner = v
		case "network":
			c.Classify.Network = v
		}
	}
	names := map[string]bool{}
	for i, s := range raw.Switches {
		pw, err := secret(fmt.Sprintf("switches[%d].password", i), s.Password)
		if err != nil {
			return nil, fmt.Errorf("runtime config: %w", err)
		}
		sc := SwitchConfig{Name: s.Name, Address: s.Address, Password: pw, Owner: s.Owner,
			RecordDir: s.RecordDir, LocalDir: rel(s.LocalDir)}
		if sc.Name == "" {
			sc.Name = strings.NewReplacer(":", "-", "[", "", "]", "").Replace(s.Address)
		}
		if names[sc.Name] {
			return nil, invalid(fmt.Sprintf("switches[%d]", i), "name %q used twice", sc.Name)
		}
		names[sc.Name] = true
		if sc.RecordDir == "" && sc.LocalDir == "" {
			host, _, _ := net.SplitHostPort(s.Address)
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return nil, invalid(fmt.Sprintf("switches[%d]", i), "%s is remote: set record_dir (the directory FreeSWITCH records into) "+
					"and local_dir (the same directory, shared or mounted, as this runtime sees it)", s.Address)
			}
		}
		if sc.LocalDir == "" {
			sc.LocalDir = filepath.Join(c.Spool, "recordings", sc.Name)
		}
		if sc.RecordDir == "" {
			sc.RecordDir = sc.LocalDir
		}
		if !filepath.IsAbs(sc.RecordDir) {
			return nil, invalid(fmt.Sprintf("switches[%d].record_dir", i), "record_dir must be an absolute path as the switch sees it")
		}
		c.Switches = append(c.Switches, sc)
	}
	if raw.HTTP != nil {
		h := &HTTPConfig{Listen: raw.HTTP.Listen}
		if raw.HTTP.Token != "" {
			t, err := secret("http.token", raw.HTTP.Token)
			if err != nil {
				return nil, fmt.Errorf("runtime config: %w", err)
			}
			h.Tokens = append(h.Tokens, Token{Name: "token", Secret: t, Rights: AllRights})
		}
		if _, dup := raw.HTTP.Tokens["token"]; dup && raw.HTTP.Token != "" {
			return nil, invalid("http.tokens.token", "the name is taken by http.token")
		}
		for _, name := range slices.Sorted(maps.Keys(raw.HTTP.Tokens)) {
			rt := raw.HTTP.Tokens[name]
			if rt.Device != "" && rt.Account == "" {
				return nil, invalid(tokenPath(name), "a device needs its account")
			}
			t, err := secret("http.tokens."+name+".secret", rt.Secret)
			if err != nil {
				return nil, fmt.Errorf("runtime config: %w", err)
			}
			if t.IsZero() {
				return nil, invalid(tokenPath(name)+".secret", "the secret is empty")
			}
			tok := Token{Name: name, Secret: t, Account: rt.Account, Device: rt.Device}
			for _, r := range rt.Rights {
				tok.Rights |= rightNames[r]
			}
			h.Tokens = append(h.Tokens, tok)
		}
		for i, a := range h.Tokens {
			for _, b := range h.Tokens[i+1:] {
				if a.Secret.Reveal() == b.Secret.Reveal() {
					return nil, invalid("http", "tokens %s and %s have the same secret: the audit could not tell them apart", a.Name, b.Name)
				}
			}
		}
		c.HTTP = h
	}
	for i, u := range raw.Uploads {
		uc := UploadConfig{Prefix: u.Prefix, Username: u.Username, Headers: map[string]Secret{}}
		for k, v := range u.Headers {
			s, err := secret(fmt.Sprintf("uploads[%d].headers.%s", i, k), v)
			if err != nil {
				return nil, fmt.Errorf("runtime config: %w", err)
			}
			uc.Headers[k] = s
		}
		if u.Password != "" {
			s, err := secret(fmt.Sprintf("uploads[%d].password", i), u.Password)
			if err != nil {
				return nil, fmt.Errorf("runtime config: %w", err)
			}
			uc.Password = s
		}
		c.Uploads = append(c.Uploads, uc)
	}
	return c, nil
}

// tokenPath is the CUE path of the API token named name.
func tokenPath(name string) string {
	return input.PathString([]string{"http", "tokens", name})
}

// Serves reports whether this runtime owns a switch.
func (c *Config) Serves(s SwitchConfig) bool { return s.Owner == "" || s.Owner == c.Name }
