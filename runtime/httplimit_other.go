//go:build !linux

package runtime

import "net"

// unread reports whether bytes have arrived on c that nobody has read
// yet. Outside Linux it cannot tell, and says no: limitConn.got alone
// keeps a connection whose request the server has begun to read.
func unread(net.Conn) bool { return false }
