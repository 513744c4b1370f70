package fakeswitch

import "github.com/recpol/recpol/runtime/eslwire"

// undef is what FreeSWITCH writes for a header whose value is empty.
const undef = "_undef_"

func getHeader(hs []eslwire.Header, name string) string {
	return eslwire.Frame{Headers: hs}.Get(name)
}
