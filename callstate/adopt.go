package callstate

// Continued is a recording that an earlier run of the driver started and
// that is still running on the switch (its intent survived a restart).
type Continued struct {
	ID      string
	StartTS int64 // RECORD_START's time, µs
	Masks   []Range
	// MaskedFromMS, when set, is where in the file a mask still in force
	// began.
	MaskedFromMS *int64
	// Format is the file's format (it may differ from the policy's now).
	Format string
}

// takeAdopted asks the driver whether a recording it decides now is one an
// earlier run started (same leg, scope and origin): it is then continued,
// not started a second time.
func (m *Machine) takeAdopted(r *Recording) *Continued {
	if m.cfg.Continue == nil {
		return nil
	}
	c, ok := m.cfg.Continue(r.Leg.UUID, r.Scope, r.Origin)
	if !ok {
		return nil
	}
	return &c
}

// continueAdopted makes r the continuation of an earlier run's recording:
// it takes its id, start and masks and counts as running. The start is
// sent again (the earlier run may have died between its intent and its
// start; a path the switch records already answers +OK and starts
// nothing), and so is a mask in force.
func (m *Machine) continueAdopted(r *Recording, a *Continued) {
	r.ID, r.StartTS, r.State = a.ID, a.StartTS, Running
	if a.Format != "" {
		r.Settings.Format = a.Format
	}
	r.masks = append([]Range(nil), a.Masks...)
	m.recs[r.ID] = r
	m.emit(Command{Kind: Start, Rec: r})
	if a.MaskedFromMS != nil {
		r.maskFrom = r.StartTS + *a.MaskedFromMS*1000
		r.Call.masked = true
		m.emit(Command{Kind: Mask, Rec: r})
	} else if r.Call.masked {
		m.mask(r, r.StartTS)
	}
	m.tag(r)
}
