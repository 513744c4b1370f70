package runtime

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"
)

// principalKey carries the token that authorized a request.
type principalKey struct{}

// tokenOf returns the token that authorized req, set by authorize.
func tokenOf(req *http.Request) *Token {
	t, _ := req.Context().Value(principalKey{}).(*Token)
	return t
}

// findToken returns the configured token whose secret is got, comparing
// with every token in constant time (no early exit), or nil.
func (r *Runtime) findToken(got string) *Token {
	if r.cfg.HTTP == nil {
		return nil
	}
	var found *Token
	for i := range r.cfg.HTTP.Tokens {
		t := &r.cfg.HTTP.Tokens[i]
		if subtle.ConstantTimeCompare([]byte(got), []byte(t.Secret.Reveal())) == 1 && found == nil {
			found = t
		}
	}
	return found
}

// authorize lets a request through when its bearer token is configured and
// holds right; the token is then in the request's context (tokenOf).
func (r *Runtime) authorize(right Rights, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.cfg.HTTP == nil || len(r.cfg.HTTP.Tokens) == 0 {
			writeError(w, http.StatusForbidden, "the API is disabled: set http.token or http.tokens in the runtime config")
			return
		}
		got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		t := r.findToken(got)
		if !ok || t == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="recpol"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		if t.Rights&right == 0 {
			writeError(w, http.StatusForbidden, "token "+t.Name+" lacks the "+right.String()+" right")
			return
		}
		next(w, req.WithContext(context.WithValue(req.Context(), principalKey{}, t)))
	})
}

// seesAccount reports whether the token's scope covers account.
func (t *Token) seesAccount(account string) bool {
	return t.Account == "" || t.Account == account
}

// seesRecording reports whether the token's scope covers a recording of
// account made on device's leg ("" for a leg of no device): a device
// token sees its own device's recordings only.
func (t *Token) seesRecording(account, endpoint string) bool {
	if !t.seesAccount(account) {
		return false
	}
	return t.Device == "" || endpoint == "device:"+t.Device
}

// everyAccount reports whether the token covers every account.
func (t *Token) everyAccount() bool { return t.Account == "" }
