package vlmcs

// Ready implements ready.Readiness: true once every publish zone's pool has completed its
// first probe round (immediately when probing is off). Use `ready { monitor continuously }`
// only if readiness should follow later rounds; vlmcs does not withdraw readiness.
func (v *Vlmcs) Ready() bool {
	for _, p := range v.pools {
		if !p.ready() {
			return false
		}
	}
	return true
}
