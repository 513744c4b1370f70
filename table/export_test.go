package table

// Pending returns the digits the collector holds, for tests.
func (c *Collector) Pending() string { return c.digits }
